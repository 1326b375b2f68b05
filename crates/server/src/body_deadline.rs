//! A deadline for a request's whole body. Every request body is wrapped in [`DeadlineBody`] by
//! the connection loop ([`crate::serve`]), so every handler's body read (a `Bytes` extraction,
//! `to_bytes`) fails with [`BodyDeadlineExpired`] once `body_read_timeout_secs` have passed
//! since the server first waited for the body. It is a total deadline, not an idle timeout:
//! a client dribbling one byte a second keeps an idle timeout happy for ever.
//!
//! The clock starts at that first wait, not when the request's head was read: what runs before
//! a handler reads the body (the API key check, a signed-in form's session lookup, which waits
//! for the database) is the server's time. A client that sent `Expect: 100-continue` is not
//! even asked for its body (hyper's `100 Continue`) before then, and hyper hands the body over
//! a chunk at a time as it is read, so a clock started at the head would answer 408 to a client
//! that sent everything on time whenever the server itself was slower than the deadline. So a
//! request can hold its connection for that pre-body time plus the deadline
//! (tests/body_deadline_clock.rs).
//!
//! Each surface answers the expiry in its own error format (408); the connection loop adds
//! `Connection: close` to every 408, so the client's connection is then closed.
//!
//! Cost on the hot path: no task and no allocation per request. The timer lives inside the
//! body (which axum boxes anyway) and is armed only the first time the body is not ready when
//! read; a frame that is ready is handed on without reading the clock. In hyper's HTTP/1 a
//! body reaches the handler through a channel, so even a small `/v1/pdq/` body is usually not
//! ready at the first read and arms the timer: a clock read and an entry in one shard of
//! tokio's timer wheel, removed when the body is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client did not send the whole body in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .limit.as_secs())]
pub struct BodyDeadlineExpired {
    limit: Duration,
}

impl BodyDeadlineExpired {
    /// The deadline that passed.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// The deadline error in `error` or its chain of sources (how a body error reaches a handler:
/// inside axum's rejection and error types).
pub fn deadline_expired<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a BodyDeadlineExpired> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(expired) = error.downcast_ref::<BodyDeadlineExpired>() {
            return Some(expired);
        }
        next = error.source();
    }
    None
}

pin_project_lite::pin_project! {
    /// `inner`, failing with [`BodyDeadlineExpired`] once `limit` has passed since it was
    /// first found not ready.
    pub struct DeadlineBody<B> {
        #[pin]
        inner: B,
        limit: Duration,
        #[pin]
        timer: Option<tokio::time::Sleep>,
    }
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            limit,
            timer: None,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.timer.is_none() {
            this.timer.set(Some(tokio::time::sleep(*this.limit)));
        }
        if let Some(timer) = this.timer.as_pin_mut()
            && timer.poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(Box::new(BodyDeadlineExpired {
                limit: *this.limit,
            }))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
