//! Streaming, size-capped content decoding.
//!
//! reqwest's transparent decompression hides both the wire size and the
//! Content-Length, so feedfold decodes itself: every wire chunk is counted
//! against `max_body_bytes`, and the decoder writes into a sink that refuses
//! to grow past `max_decompressed_bytes`. A 10 MB gzip that inflates to 10 GB
//! therefore stops after at most one chunk's worth of inflation past the cap.

use std::io::{self, Write};

use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Why decoding stopped.
#[derive(Debug)]
pub enum DecodeError {
    /// The decoded body would exceed the cap (the value).
    TooLarge(u64),
    /// The compressed stream is corrupt.
    Corrupt(String),
    /// A Content-Encoding we neither asked for nor understand.
    Unsupported(String),
}

/// A Vec that refuses to grow beyond `cap`, and never over-allocates past it.
struct CappedSink {
    buf: Vec<u8>,
    cap: usize,
    exceeded: bool,
}

impl Write for CappedSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let need = self.buf.len().saturating_add(data.len());
        if need > self.cap {
            self.exceeded = true;
            return Err(io::Error::other("decoded size limit reached"));
        }
        if need > self.buf.capacity() {
            let grown = self
                .buf
                .capacity()
                .saturating_mul(2)
                .max(need)
                .min(self.cap);
            self.buf.reserve_exact(grown - self.buf.len());
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Identity(CappedSink),
    /// "deflate" is zlib-wrapped per the RFC but raw in many servers; the
    /// first two bytes decide, so they are buffered until known.
    DeflatePending(CappedSink, Vec<u8>),
    Gzip(MultiGzDecoder<CappedSink>),
    Zlib(ZlibDecoder<CappedSink>),
    RawDeflate(DeflateDecoder<CappedSink>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<CappedSink>>),
    /// Brotli reported end of stream; trailing bytes are ignored.
    BrotliDone(Box<brotli_decompressor::DecompressorWriter<CappedSink>>),
    Poisoned,
}

pub struct Decoder {
    inner: Inner,
    cap: u64,
}

impl Decoder {
    /// `encoding` is the Content-Encoding header value (None = identity).
    pub fn new(encoding: Option<&str>, cap: u64) -> Result<Decoder, DecodeError> {
        let sink = CappedSink {
            buf: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            exceeded: false,
        };
        let enc = encoding.map(|e| e.trim().to_ascii_lowercase());
        let inner = match enc.as_deref() {
            None | Some("") | Some("identity") => Inner::Identity(sink),
            Some("gzip") | Some("x-gzip") => Inner::Gzip(MultiGzDecoder::new(sink)),
            Some("deflate") => Inner::DeflatePending(sink, Vec::new()),
            Some("br") => Inner::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                sink,
                16 * 1024,
            ))),
            Some(other) => return Err(DecodeError::Unsupported(other.to_owned())),
        };
        Ok(Decoder { inner, cap })
    }

    /// Feeds one wire chunk.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let cap = self.cap;
        let inner = std::mem::replace(&mut self.inner, Inner::Poisoned);
        let (inner, res) = match inner {
            Inner::Identity(mut s) => {
                let r = s.write_all(chunk);
                let r = map_err(r, s.exceeded, cap);
                (Inner::Identity(s), r)
            }
            Inner::DeflatePending(sink, mut head) => {
                head.extend_from_slice(chunk);
                if head.len() < 2 {
                    (Inner::DeflatePending(sink, head), Ok(()))
                } else {
                    let zlib = (head[0] & 0x0f) == 8
                        && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
                    let mut next = if zlib {
                        Inner::Zlib(ZlibDecoder::new(sink))
                    } else {
                        Inner::RawDeflate(DeflateDecoder::new(sink))
                    };
                    let r = write_inner(&mut next, &head, cap);
                    (next, r)
                }
            }
            mut other => {
                let r = write_inner(&mut other, chunk, cap);
                (other, r)
            }
        };
        self.inner = inner;
        res
    }

    /// Flushes the decoder and returns the decoded body.
    pub fn finish(self) -> Result<Vec<u8>, DecodeError> {
        let cap = self.cap;
        match self.inner {
            Inner::Identity(s) => Ok(s.buf),
            Inner::DeflatePending(sink, head) => {
                if head.is_empty() {
                    Ok(sink.buf)
                } else {
                    Err(DecodeError::Corrupt("truncated deflate stream".into()))
                }
            }
            Inner::Gzip(d) => d.finish().map_err(|e| classify_io(e, cap)).map(|s| s.buf),
            Inner::Zlib(d) => d.finish().map_err(|e| classify_io(e, cap)).map(|s| s.buf),
            Inner::RawDeflate(d) => d.finish().map_err(|e| classify_io(e, cap)).map(|s| s.buf),
            Inner::Brotli(mut d) | Inner::BrotliDone(mut d) => {
                d.close().map_err(|e| {
                    if d.get_ref().exceeded {
                        DecodeError::TooLarge(cap)
                    } else {
                        DecodeError::Corrupt(format!("brotli: {e}"))
                    }
                })?;
                Ok(std::mem::take(&mut d.get_mut().buf))
            }
            Inner::Poisoned => Err(DecodeError::Corrupt("decoder used after an error".into())),
        }
    }
}

fn write_inner(inner: &mut Inner, chunk: &[u8], cap: u64) -> Result<(), DecodeError> {
    match inner {
        Inner::Gzip(d) => {
            let r = d.write_all(chunk);
            map_err(r, d.get_ref().exceeded, cap)
        }
        Inner::Zlib(d) => {
            let r = d.write_all(chunk);
            map_err(r, d.get_ref().exceeded, cap)
        }
        Inner::RawDeflate(d) => {
            let r = d.write_all(chunk);
            map_err(r, d.get_ref().exceeded, cap)
        }
        Inner::Brotli(d) => {
            let mut rest = chunk;
            while !rest.is_empty() {
                match d.write(rest) {
                    Ok(0) => {
                        // End of the brotli stream: ignore trailing bytes.
                        let done = std::mem::replace(inner, Inner::Poisoned);
                        if let Inner::Brotli(d) = done {
                            *inner = Inner::BrotliDone(d);
                        }
                        return Ok(());
                    }
                    Ok(n) => rest = &rest[n.min(rest.len())..],
                    Err(e) => return map_err(Err(e), d.get_ref().exceeded, cap),
                }
            }
            Ok(())
        }
        Inner::BrotliDone(_) => Ok(()),
        Inner::Identity(_) | Inner::DeflatePending(..) | Inner::Poisoned => Err(
            DecodeError::Corrupt("decoder in an unexpected state".into()),
        ),
    }
}

fn map_err(r: io::Result<()>, exceeded: bool, cap: u64) -> Result<(), DecodeError> {
    match r {
        Ok(()) => Ok(()),
        Err(_) if exceeded => Err(DecodeError::TooLarge(cap)),
        Err(e) => Err(DecodeError::Corrupt(e.to_string())),
    }
}

fn classify_io(e: io::Error, cap: u64) -> DecodeError {
    if e.to_string().contains("decoded size limit") {
        DecodeError::TooLarge(cap)
    } else {
        DecodeError::Corrupt(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode_in_chunks(enc: Option<&str>, wire: &[u8], cap: u64) -> Result<Vec<u8>, DecodeError> {
        let mut d = Decoder::new(enc, cap)?;
        for c in wire.chunks(7) {
            d.push(c)?;
        }
        d.finish()
    }

    #[test]
    fn round_trips() {
        let text = b"<rss><channel><title>x</title></channel></rss>".repeat(50);
        assert_eq!(decode_in_chunks(None, &text, 1 << 20).unwrap(), text);
        assert_eq!(
            decode_in_chunks(Some("gzip"), &gzip(&text), 1 << 20).unwrap(),
            text
        );

        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&text).unwrap();
        let z = z.finish().unwrap();
        assert_eq!(
            decode_in_chunks(Some("deflate"), &z, 1 << 20).unwrap(),
            text
        );

        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(&text).unwrap();
        let r = r.finish().unwrap();
        assert_eq!(
            decode_in_chunks(Some("Deflate"), &r, 1 << 20).unwrap(),
            text
        );
    }

    #[test]
    fn brotli_hand_built_stream() {
        // No brotli encoder in the tree, so a stream is built by hand: an
        // uncompressed meta-block holding "hello" (window bits 16, MLEN-1 = 4,
        // ISUNCOMPRESSED) followed by an empty last meta-block.
        let mut wire = vec![0x40, 0x00, 0x10];
        wire.extend_from_slice(b"hello");
        wire.push(0x03);
        assert_eq!(
            decode_in_chunks(Some("br"), &wire, 1 << 20).unwrap(),
            b"hello"
        );
        match decode_in_chunks(Some("br"), &wire, 3) {
            Err(DecodeError::TooLarge(3)) => {}
            other => panic!("expected TooLarge, got {:?}", other.map(|v| v.len())),
        }
        assert!(matches!(
            decode_in_chunks(Some("br"), &[0xff, 0xff, 0xff, 0xff], 1 << 20),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn bomb_stops_at_cap() {
        let bomb = gzip(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 64 << 10);
        match decode_in_chunks(Some("gzip"), &bomb, 1 << 20) {
            Err(DecodeError::TooLarge(cap)) => assert_eq!(cap, 1 << 20),
            other => panic!("expected TooLarge, got {:?}", other.map(|v| v.len())),
        }
        match decode_in_chunks(None, &[b'a'; 100], 99) {
            Err(DecodeError::TooLarge(99)) => {}
            other => panic!("expected TooLarge, got {:?}", other.map(|v| v.len())),
        }
    }

    #[test]
    fn corrupt_and_unsupported() {
        assert!(matches!(
            decode_in_chunks(Some("gzip"), b"definitely not gzip", 1 << 20),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            Decoder::new(Some("zstd"), 10),
            Err(DecodeError::Unsupported(_))
        ));
    }
}
