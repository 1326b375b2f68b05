//! What `aranea` does when the reader of its standard output goes away (`aranea hash DIR |
//! head -1`): it stops at once, silently, killed by SIGPIPE as `cat` or `grep` would be, so
//! the shell sees status 141 and `set -o pipefail` scripts see the pipeline cut short rather
//! than a success that printed half its output.
//!
//! Why not simply restore SIGPIPE's default disposition at the start of `main`: Rust ignores
//! SIGPIPE so that a peer closing a socket gives EPIPE rather than death, and the server,
//! the crawler and the notice senders rely on that. std sends on TCP with MSG_NOSIGNAL, but
//! its vectored writes (`writev`, which hyper uses for HTTP/1 on both the server and the
//! client side) do not, so with the default disposition a client hanging up mid-response
//! would kill `aranea serve`. So SIGPIPE stays ignored while the command runs, and the two
//! ways a closed stdout surfaces are caught instead: `println!`'s panic (see
//! [`install_panic_hook`]) and an `io::Error` returned by an explicit `writeln!` to stdout
//! (see [`caused`]). Only then is the default disposition restored, to die of it.

use std::io;

/// std's `print!`/`println!` panic with this prefix when writing to stdout fails.
const PRINT_PANIC_PREFIX: &str = "failed printing to stdout";

/// Replaces the panic hook so that `println!`'s panic on a stdout whose reader is gone ends
/// the process by SIGPIPE instead of printing a panic message and a backtrace. Every other
/// panic goes to the hook that was installed before.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let from_print = info
            .payload_as_str()
            .is_some_and(|message| message.starts_with(PRINT_PANIC_PREFIX));
        if from_print && reader_is_gone() {
            die_of_sigpipe();
        }
        previous(info);
    }));
}

/// True when `error` is a broken pipe and it is stdout's reader that went away (a broken
/// pipe from a socket, with stdout still read, is an ordinary error to report).
pub fn caused(error: &anyhow::Error) -> bool {
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io_error| io_error.kind() == io::ErrorKind::BrokenPipe)
    });
    broken_pipe && reader_is_gone()
}

/// Whether stdout is a pipe or socket with nobody left to read it: Linux reports POLLERR on
/// the write end of a pipe without readers, POLLHUP on a socket whose peer hung up. A file or
/// terminal reports neither.
fn reader_is_gone() -> bool {
    let mut stdout_poll = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1, zero timeout: poll only writes `revents`.
    let ready = unsafe { libc::poll(&mut stdout_poll, 1, 0) };
    ready == 1 && stdout_poll.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Ends the process the way a C tool writing to a closed pipe ends: killed by SIGPIPE.
pub fn die_of_sigpipe() -> ! {
    // SAFETY: setting a standard disposition and raising a signal at ourselves; nothing
    // else in the process depends on SIGPIPE being ignored from here on, as we are ending.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Unreachable once the signal is delivered; the shell's status for it, should it not be.
    std::process::exit(128 + libc::SIGPIPE)
}
