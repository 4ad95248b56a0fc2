//! Log injection is neutralized: CR, LF, ESC, the other C0 controls, DEL, the C1 controls and
//! U+2028/U+2029 in messages, string fields, `%display` and `?debug` fields, error fields,
//! targets, span names and span fields never reach the file raw, in either format. Every
//! event is exactly one physical line, and the JSON decodes back to the original strings.

mod common;

use std::fmt;

use serde_json::Value;
use tracing::field::Empty;
use tracing_filesink::{FileSink, Format};

/// Every character that must be escaped, plus a forged record, a terminal escape sequence
/// and characters that must pass untouched.
fn evil() -> String {
    let mut s = String::from("start|");
    for cp in (0u32..0x20)
        .chain([0x7f])
        .chain(0x80..=0x9f)
        .chain([0x2028, 0x2029])
    {
        s.push(char::from_u32(cp).unwrap());
        s.push('.');
    }
    s.push_str(
        "\r\n{\"level\":\"ERROR\",\"forged\":true}\n\x1b[2J\x1b]0;title\x07 é ✓ 😀 \" \\ |end",
    );
    s
}

/// The span name: span names are `&'static str` literals.
const SPAN_NAME: &str = "span\r\nname\x1b[31m\u{85}\u{2028}\u{7f}\0";
const TARGET: &str = "target\n\x1b[1m\u{9b}";

/// Writes its string raw from both `Display` and `Debug`, as a careless user type would.
struct Raw<'a>(&'a str);
impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Debug)]
struct RawError(String);
impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for RawError {}

/// Logs one event per injection vector; returns how many events were logged.
fn log_everything(s: &str) -> usize {
    let err = RawError(s.to_string());
    tracing::info!("{}", s);
    tracing::info!(message = s);
    tracing::info!(field = s, "string field");
    tracing::info!(field = %Raw(s), "display field");
    tracing::info!(field = ?Raw(s), "debug field");
    tracing::info!(
        field = &err as &(dyn std::error::Error + 'static),
        "error field"
    );
    tracing::info!(target: "target\n\x1b[1m\u{9b}", "target");
    let span = tracing::info_span!(
        "span\r\nname\x1b[31m\u{85}\u{2028}\u{7f}\0",
        s = s,
        d = %Raw(s),
        g = ?Raw(s),
        late = Empty,
    );
    span.record("late", s);
    span.in_scope(|| tracing::info!("inside the span"));
    8
}

/// No character a terminal or a line-oriented reader would act on.
fn assert_no_raw_controls(line: &str) {
    if let Some(c) = line
        .chars()
        .find(|&c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        panic!("raw control {:?} (U+{:04X}) in line {line:?}", c, c as u32);
    }
}

/// The visible escapes the text format documents: `\n`, `\r`, `\t`, `\xHH` for the other C0
/// controls and DEL, `\u{HH}` for C1 controls and U+2028/U+2029.
fn text_escaped(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                o.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => o.push(c),
        }
    }
    o
}

/// What `build_writer()` makes of a control character in someone else's record: a JSON-style
/// escape, valid inside a JSON string and readable in text.
fn controls_escaped(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\u{8}' => o.push_str("\\b"),
            '\u{c}' => o.push_str("\\f"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                o.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o
}

fn run_sink(format: Format) -> (Vec<String>, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (layer, guard) = FileSink::builder(tmp.path(), "app")
        .format(format)
        .build()
        .unwrap();
    let s = evil();
    let n = tracing::dispatcher::with_default(&common::dispatch(layer), || log_everything(&s));
    guard.flush().unwrap();
    let bytes = common::read_active(tmp.path(), "app");
    let lines = common::lines(&bytes, "app.log");
    (lines, n)
}

#[test]
fn json_one_line_per_event_and_strings_round_trip() {
    let s = evil();
    let (lines, n) = run_sink(Format::Json);
    assert_eq!(lines.len(), n, "one physical line per event: {lines:#?}");
    for l in &lines {
        assert_no_raw_controls(l);
    }
    let v: Vec<Value> = lines.iter().map(|l| common::json(l)).collect();
    assert_eq!(v[0]["fields"]["message"], s.as_str());
    assert_eq!(v[1]["fields"]["message"], s.as_str());
    for (i, what) in [(2, "string"), (3, "display"), (4, "debug"), (5, "error")] {
        assert_eq!(v[i]["fields"]["field"], s.as_str(), "{what} field");
        assert_eq!(v[i]["fields"]["message"], format!("{what} field").as_str());
    }
    assert_eq!(v[6]["target"], TARGET);
    assert_eq!(v[7]["target"], "injection");
    for span in [&v[7]["span"], &v[7]["spans"][0]] {
        assert_eq!(span["name"], SPAN_NAME);
        for k in ["s", "d", "g", "late"] {
            assert_eq!(span[k], s.as_str(), "span field {k}");
        }
    }
}

#[test]
fn text_one_line_per_event_with_visible_escapes() {
    let s = evil();
    let (lines, n) = run_sink(Format::Text);
    assert_eq!(lines.len(), n, "one physical line per event: {lines:#?}");
    for l in &lines {
        assert_no_raw_controls(l);
    }
    let esc = text_escaped(&s);
    // A `&str` field is written with `Debug`, as tracing-subscriber does; whatever `Debug`
    // leaves raw (U+2028, for one) is escaped after it.
    let esc_debug = text_escaped(&format!("{s:?}"));
    assert!(
        lines[0].ends_with(&format!("injection: {esc}")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(&format!("injection: {esc}")),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with(&format!("string field field={esc_debug}")),
        "{}",
        lines[2]
    );
    for (i, what) in [(3, "display"), (4, "debug"), (5, "error")] {
        assert!(
            lines[i].ends_with(&format!("{what} field field={esc}")),
            "{what}: {}",
            lines[i]
        );
    }
    assert!(
        lines[6].contains(&format!(" {}: target", text_escaped(TARGET))),
        "{}",
        lines[6]
    );
    let span = format!(
        "{}{{s={esc_debug} d={esc} g={esc} late={esc_debug}}}: injection: inside the span",
        text_escaped(SPAN_NAME)
    );
    assert!(
        lines[7].ends_with(&span),
        "{}\nexpected suffix {span}",
        lines[7]
    );
}

/// `build_writer()` for users who keep `fmt::layer()`: its text format writes CR/LF and
/// display fields raw; the sink's writer must still make each event one escaped line.
#[test]
fn fmt_text_layer_through_build_writer_is_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, guard) = FileSink::builder(tmp.path(), "app").build_writer().unwrap();
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer);
    let s = evil();
    let n = tracing::dispatcher::with_default(&common::dispatch(layer), || log_everything(&s));
    guard.flush().unwrap();
    let lines = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
    assert_eq!(lines.len(), n, "one physical line per event: {lines:#?}");
    for l in &lines {
        assert_no_raw_controls(l);
    }
    // fmt's text format already escapes some characters itself (ESC, BEL, BS as `\x1b`...);
    // the sink escapes what it leaves raw. Both kinds are visible, so the message is still all
    // there, between its markers, on the event's one line.
    for (i, what) in [(0, "message"), (3, "display field")] {
        let l = &lines[i];
        let start = l.find("start|").unwrap_or_else(|| panic!("{what}: {l}"));
        let end = l.rfind("|end").unwrap_or_else(|| panic!("{what}: {l}"));
        assert!(start < end, "{what}: {l}");
        assert!(
            l[start..end].contains("{\"level\":\"ERROR\",\"forged\":true}"),
            "{l}"
        );
    }
    assert!(
        lines[7].contains(&controls_escaped(SPAN_NAME))
            || lines[7].contains(&text_escaped(SPAN_NAME)),
        "span name: {}",
        lines[7]
    );
}

/// `build_writer()` with `fmt::layer().json()`: serde_json leaves DEL, C1 controls and
/// U+2028/U+2029 raw. Whatever the sink does about them, each line must stay valid JSON
/// that decodes back to the original strings.
#[test]
fn fmt_json_layer_through_build_writer_stays_valid_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, guard) = FileSink::builder(tmp.path(), "app").build_writer().unwrap();
    let layer = tracing_subscriber::fmt::layer().json().with_writer(writer);
    let s = evil();
    let n = tracing::dispatcher::with_default(&common::dispatch(layer), || log_everything(&s));
    guard.flush().unwrap();
    let lines = common::lines(&common::read_active(tmp.path(), "app"), "app.log");
    assert_eq!(lines.len(), n, "one physical line per event: {lines:#?}");
    for l in &lines {
        assert_no_raw_controls(l);
    }
    let v: Vec<Value> = lines.iter().map(|l| common::json(l)).collect();
    assert_eq!(v[0]["fields"]["message"], s.as_str());
    assert_eq!(v[2]["fields"]["field"], s.as_str());
    assert_eq!(v[3]["fields"]["field"], s.as_str());
    assert_eq!(v[7]["span"]["name"], SPAN_NAME);
}
