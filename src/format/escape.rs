//! Neutralizing log injection.
//!
//! Every string that reaches a record (messages, string fields, `%display` and `?debug`
//! output, span names and fields) passes through one of these escapers, so a record is
//! always exactly one physical line and carries no terminal escape sequence.
//!
//! Escaped: the C0 controls (including CR, LF, ESC), DEL, the C1 controls U+0080..=U+009F
//! and the Unicode line/paragraph separators U+2028/U+2029. JSON strings additionally escape
//! `"` and `\`. The scan is a table lookup per byte with bulk copies of the clean runs.

use std::fmt;

/// 0: copy as is. 1: escape (ASCII). 2: lead byte of a possible C1 control (0xC2).
/// 3: lead byte of a possible U+2028/U+2029 (0xE2). 4: `"` or `\` (JSON only).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[0x7f] = 1;
    t[0xC2] = 2;
    t[0xE2] = 3;
    t[b'"' as usize] = 4;
    t[b'\\' as usize] = 4;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when some byte of `x` is zero (exact; Bit Twiddling Hacks' `haszero`).
#[inline]
fn has_zero(x: u64) -> bool {
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// True when some byte of the 8 in `x` may need attention: a C0 control, `"` or `\\` (with
/// `quote_specials`), or anything from DEL up (DEL, and the lead bytes of C1 controls and
/// U+2028/U+2029 among ordinary UTF-8). Never false when a byte needs attention.
#[inline]
fn maybe_special(x: u64, quote_specials: bool) -> bool {
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS != 0;
    let del_or_more = (x.wrapping_add(ONES) | x) & HIGHS != 0;
    below_space
        || del_or_more
        || (quote_specials && (has_zero(x ^ (ONES * 0x22)) || has_zero(x ^ (ONES * 0x5c))))
}

#[inline]
fn is_special(b: u8, quote_specials: bool) -> bool {
    let c = CLASS[b as usize];
    c != 0 && (c != 4 || quote_specials)
}

/// Finds the next byte at or after `i` that needs attention, honoring `quote_specials`.
/// Clean text is skipped eight bytes at a time.
#[inline]
fn next_special(bytes: &[u8], mut i: usize, quote_specials: bool) -> usize {
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if maybe_special(u64::from_le_bytes(word), quote_specials) {
            if let Some(j) = chunk.iter().position(|&b| is_special(b, quote_specials)) {
                return i + j;
            }
        }
        i += 8;
    }
    while i < bytes.len() {
        if is_special(bytes[i], quote_specials) {
            return i;
        }
        i += 1;
    }
    i
}

/// If the byte at `i` starts a sequence that must be escaped, returns its code point and
/// length in bytes.
#[inline]
fn special_at(bytes: &[u8], i: usize) -> Option<(u32, usize)> {
    let b = bytes[i];
    match CLASS[b as usize] {
        1 | 4 => Some((b as u32, 1)),
        2 => match bytes.get(i + 1) {
            Some(&n) if (0x80..=0x9f).contains(&n) => Some((n as u32, 2)),
            _ => None,
        },
        3 => match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(0x80), Some(&n)) if n == 0xA8 || n == 0xA9 => Some((0x2000 + n as u32 - 0x80, 3)),
            _ => None,
        },
        _ => None,
    }
}

/// True when [`json_escape_into`] would change `s`.
pub(crate) fn has_json_special(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = next_special(bytes, 0, true);
    while i < bytes.len() {
        if special_at(bytes, i).is_some() {
            return true;
        }
        i = next_special(bytes, i + 1, true);
    }
    false
}

/// Appends `s` to `out` escaped for the inside of a JSON string (no surrounding quotes).
pub(crate) fn json_escape_into(out: &mut Vec<u8>, s: &str) {
    json_style_escape(out, s, true);
}

/// Escapes only the control characters, JSON-style (`\n`, `\u001b`, `\u2028`), leaving `"`
/// and `\` alone: valid inside a JSON string and readable in text. For records formatted by
/// someone else (`build_writer`), whose format the sink does not know.
pub(crate) fn controls_escape_into(out: &mut Vec<u8>, s: &str) {
    json_style_escape(out, s, false);
}

fn json_style_escape(out: &mut Vec<u8>, s: &str, quotes: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = next_special(bytes, 0, quotes);
    if i == bytes.len() {
        out.extend_from_slice(bytes);
        return;
    }
    while i < bytes.len() {
        match special_at(bytes, i) {
            Some((cp, len)) if quotes || (cp != 0x22 && cp != 0x5c) => {
                out.extend_from_slice(&bytes[start..i]);
                match cp {
                    0x22 => out.extend_from_slice(b"\\\""),
                    0x5c => out.extend_from_slice(b"\\\\"),
                    0x0a => out.extend_from_slice(b"\\n"),
                    0x0d => out.extend_from_slice(b"\\r"),
                    0x09 => out.extend_from_slice(b"\\t"),
                    0x08 => out.extend_from_slice(b"\\b"),
                    0x0c => out.extend_from_slice(b"\\f"),
                    _ => {
                        out.extend_from_slice(b"\\u");
                        for shift in [12, 8, 4, 0] {
                            out.push(HEX[((cp >> shift) & 0xf) as usize]);
                        }
                    }
                }
                i += len;
                start = i;
            }
            _ => i += 1,
        }
        i = next_special(bytes, i, quotes);
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `s` to `out` with control characters replaced by visible escapes
/// (`\n`, `\r`, `\t`, `\x1b`, `\u{85}`, `\u{2028}`), for the text format.
pub(crate) fn text_escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = next_special(bytes, 0, false);
    if i == bytes.len() {
        out.extend_from_slice(bytes);
        return;
    }
    while i < bytes.len() {
        match special_at(bytes, i) {
            Some((cp, len)) => {
                out.extend_from_slice(&bytes[start..i]);
                match cp {
                    0x0a => out.extend_from_slice(b"\\n"),
                    0x0d => out.extend_from_slice(b"\\r"),
                    0x09 => out.extend_from_slice(b"\\t"),
                    0..=0x7f => {
                        out.extend_from_slice(b"\\x");
                        out.push(HEX[(cp >> 4) as usize]);
                        out.push(HEX[(cp & 0xf) as usize]);
                    }
                    _ => {
                        out.extend_from_slice(b"\\u{");
                        let mut digits = [0u8; 8];
                        let mut n = 0;
                        let mut v = cp;
                        while v > 0 {
                            digits[n] = HEX[(v & 0xf) as usize];
                            v >>= 4;
                            n += 1;
                        }
                        while n > 0 {
                            n -= 1;
                            out.push(digits[n]);
                        }
                        out.push(b'}');
                    }
                }
                i += len;
                start = i;
            }
            None => i += 1,
        }
        i = next_special(bytes, i, false);
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A `fmt::Write` that escapes everything written through it into a JSON string body.
pub(crate) struct JsonEscaper<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for JsonEscaper<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        json_escape_into(self.0, s);
        Ok(())
    }
}

/// A `fmt::Write` that escapes control characters for the text format.
pub(crate) struct TextEscaper<'a>(pub(crate) &'a mut Vec<u8>);

impl fmt::Write for TextEscaper<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        text_escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> String {
        let mut v = Vec::new();
        json_escape_into(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    fn text(s: &str) -> String {
        let mut v = Vec::new();
        text_escape_into(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    /// The naive oracle: char by char.
    fn json_naive(s: &str) -> String {
        let mut o = String::new();
        for c in s.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                '\u{8}' => o.push_str("\\b"),
                '\u{c}' => o.push_str("\\f"),
                c if (c as u32) < 0x20
                    || c == '\u{7f}'
                    || ('\u{80}'..='\u{9f}').contains(&c)
                    || c == '\u{2028}'
                    || c == '\u{2029}' =>
                {
                    o.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => o.push(c),
            }
        }
        o
    }

    #[test]
    fn json_matches_naive_oracle_on_every_interesting_char() {
        let mut all = String::new();
        for cp in (0u32..0x3000).chain([0x1F600, 0xFFFD]) {
            if let Some(c) = char::from_u32(cp) {
                all.push(c);
                all.push('a');
            }
        }
        assert_eq!(json(&all), json_naive(&all));
        for cp in 0u32..0x3000 {
            if let Some(c) = char::from_u32(cp) {
                let s = format!("x{c}y{c}");
                assert_eq!(json(&s), json_naive(&s), "cp {cp:#x}");
            }
        }
    }

    /// The word-at-a-time scan: every interesting character at every offset of a long string.
    #[test]
    fn specials_are_found_at_every_offset() {
        let pad = "abcdefghijklmnopqrstuvwxyz012345";
        let specials = (0u32..0x3000)
            .filter_map(char::from_u32)
            .filter(|c| json_naive(&c.to_string()) != c.to_string() || c.is_control());
        for c in specials.chain(['é', '✓', '\u{2027}', '\u{202a}', '😀']) {
            for at in 0..pad.len() {
                let s = format!("{}{c}{}", &pad[..at], &pad[at..]);
                assert_eq!(json(&s), json_naive(&s), "{c:?} at {at}");
                let t = text(&s);
                assert!(
                    !t.chars()
                        .any(|ch| ch.is_control() || ch == '\u{2028}' || ch == '\u{2029}'),
                    "{c:?} at {at}: {t:?}"
                );
            }
        }
    }

    #[test]
    fn json_plain_is_copied() {
        assert_eq!(json("hello world é ü ✓"), "hello world é ü ✓");
        assert_eq!(json(""), "");
    }

    #[test]
    fn controls_only_escape_is_valid_json_and_keeps_quotes() {
        let mut v = Vec::new();
        let input = "{\"m\":\"a\nb\x1b\u{7f}\u{85}\u{2028} q\\\" \\\\\"}";
        controls_escape_into(&mut v, input);
        let out = String::from_utf8(v).unwrap();
        assert_eq!(out, r#"{"m":"a\nb\u001b\u007f\u0085\u2028 q\" \\"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        let original: serde_json::Value =
            serde_json::from_str(&input.replace('\n', "\\n").replace('\x1b', "\\u001b")).unwrap();
        assert_eq!(parsed["m"], original["m"]);
    }

    #[test]
    fn text_escapes_controls_visibly() {
        assert_eq!(text("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(text("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(
            text("\u{7f}\u{85}\u{2028}\u{2029}"),
            "\\x7f\\u{85}\\u{2028}\\u{2029}"
        );
        assert_eq!(text("quote \" and \\ stay"), "quote \" and \\ stay");
        assert_eq!(text("é✓\u{2030}"), "é✓\u{2030}");
    }

    #[test]
    fn no_output_contains_raw_controls() {
        for cp in 0u32..0x3000 {
            if let Some(c) = char::from_u32(cp) {
                let s = format!("{c}{c}");
                for out in [json(&s), text(&s)] {
                    assert!(
                        !out.chars()
                            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
                        "cp {cp:#x} -> {out:?}"
                    );
                }
            }
        }
    }
}
