//! Writing ZIP, TAR and gzip-compressed TAR files from named byte strings, as simulated sites
//! serve them (and as tests of archive readers build their inputs).
//!
//! Plain, standard layouts only (ZIP with local headers, a central directory and an end record;
//! POSIX ustar headers); hostile variants are made by the caller changing the bytes. Output is a
//! pure function of the input: no timestamps from the clock.

use std::io::Write;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};

/// How a ZIP member is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipMethod {
    Stored,
    Deflated,
}

/// A ZIP archive of `(path, bytes, method)` members, in order.
pub fn zip(members: &[(&str, &[u8], ZipMethod)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for (path, bytes, method) in members {
        let mut crc = flate2::Crc::new();
        crc.update(bytes);
        let (code, data) = match method {
            ZipMethod::Stored => (0u16, bytes.to_vec()),
            ZipMethod::Deflated => {
                let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(bytes);
                (8u16, encoder.finish().unwrap_or_default())
            }
        };
        let offset = out.len() as u32;
        let name = path.as_bytes();
        let common = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&20u16.to_le_bytes()); // version needed
            buf.extend_from_slice(&0x0800u16.to_le_bytes()); // flags: UTF-8 names
            buf.extend_from_slice(&code.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes()); // time
            buf.extend_from_slice(&0x5A21u16.to_le_bytes()); // date: 2025-01-01
            buf.extend_from_slice(&crc.sum().to_le_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(b"PK\x03\x04");
        common(&mut out);
        out.extend_from_slice(name);
        out.extend_from_slice(&data);

        directory.extend_from_slice(b"PK\x01\x02");
        directory.extend_from_slice(&0x031Eu16.to_le_bytes()); // made by: Unix, 3.0
        common(&mut directory);
        directory.extend_from_slice(&0u16.to_le_bytes()); // comment length
        directory.extend_from_slice(&0u16.to_le_bytes()); // disk
        directory.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        directory.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        directory.extend_from_slice(&offset.to_le_bytes());
        directory.extend_from_slice(name);
    }
    let directory_offset = out.len() as u32;
    out.extend_from_slice(&directory);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}

/// A POSIX ustar archive of `(path, bytes)` regular files; paths over 100 bytes are split into
/// prefix and name at a `/` (longer ones are cut).
pub fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, bytes) in members {
        out.extend_from_slice(&ustar_header(path, bytes.len() as u64));
        out.extend_from_slice(bytes);
        let padding = (512 - bytes.len() % 512) % 512;
        out.resize(out.len() + padding, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// [`tar`] inside one gzip stream.
pub fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    gzip(&tar(members))
}

/// `bytes` as one gzip stream.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// One 512-byte ustar header for a regular file.
pub fn ustar_header(path: &str, size: u64) -> [u8; 512] {
    let mut header = [0u8; 512];
    let (prefix, name) = split_path(path.as_bytes());
    put(&mut header, 0, name);
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0001750\0");
    put(&mut header, 116, b"0001750\0");
    put(&mut header, 124, format!("{size:011o}\0").as_bytes());
    put(&mut header, 136, b"15022222000\0");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\x0000");
    put(&mut header, 265, b"simweb");
    put(&mut header, 297, b"simweb");
    put(&mut header, 345, prefix);
    set_checksum(&mut header);
    header
}

/// Writes a header's checksum field from its other bytes.
pub fn set_checksum(header: &mut [u8; 512]) {
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(header, 148, format!("{sum:06o}\0 ").as_bytes());
}

fn split_path(path: &[u8]) -> (&[u8], &[u8]) {
    if path.len() <= 100 {
        return (&[], path);
    }
    let cut = path
        .iter()
        .enumerate()
        .rev()
        .find(|&(i, &b)| b == b'/' && i <= 155 && path.len() - i - 1 <= 100)
        .map(|(i, _)| i);
    match cut {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], &path[..100]),
    }
}

fn put(header: &mut [u8; 512], at: usize, bytes: &[u8]) {
    let end = (at + bytes.len()).min(header.len());
    header[at..end].copy_from_slice(&bytes[..end - at]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_a_valid_checksum_and_split_long_paths() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let header = ustar_header(&long, 5);
        assert_eq!(&header[0..90], "f".repeat(90).as_bytes());
        assert_eq!(&header[345..465], "d".repeat(120).as_bytes());
        let sum: u32 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| u32::from(if (148..156).contains(&i) { b' ' } else { b }))
            .sum();
        let stored = std::str::from_utf8(&header[148..154]).unwrap();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
    }

    #[test]
    fn zip_end_record_counts_members_and_points_at_the_directory() {
        let bytes = zip(&[
            ("a.txt", b"hello", ZipMethod::Stored),
            ("b/c.txt", &[7u8; 1000], ZipMethod::Deflated),
        ]);
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let offset = u32::from_le_bytes([end[16], end[17], end[18], end[19]]) as usize;
        assert_eq!(&bytes[offset..offset + 4], b"PK\x01\x02");
        assert!(bytes.len() < 400, "the repeated member is deflated");
    }
}
