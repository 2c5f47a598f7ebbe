extern crate std;
use super::*;
use std::string::String;

fn render(level: Level, target: &str, msg: fmt::Arguments<'_>, fields: &[(&str, Value<'_>)]) -> String {
    let mut out = String::new();
    write_record(&mut out, level, target, msg, fields.iter().copied()).unwrap();
    out
}

#[test]
fn formats_the_booted_record_exactly() {
    let line = render(
        Level::Info,
        "kernel",
        format_args!("booted"),
        &[("tee", Value::Str("plain")), ("reset_to_main_cycles", Value::U64(1234)), ("ok", Value::Bool(true))],
    );
    assert_eq!(line, "level=info target=kernel msg=\"booted\" tee=plain reset_to_main_cycles=1234 ok=true\n");
}

#[test]
fn formats_hex_and_signed_values() {
    let line =
        render(Level::Error, "fault", format_args!("fault"), &[("rip", Value::Hex(0xdead)), ("d", Value::I64(-3))]);
    assert_eq!(line, "level=error target=fault msg=\"fault\" rip=0xdead d=-3\n");
}

#[test]
fn quotes_and_escapes_text_that_is_not_a_bare_token() {
    let line = render(Level::Warn, "t", format_args!("say \"hi\"\n"), &[("why", Value::Str("a b\\c\x07"))]);
    assert_eq!(line, "level=warn target=t msg=\"say \\\"hi\\\"\\n\" why=\"a b\\\\c\\x07\"\n");
    assert_eq!(line.matches('\n').count(), 1, "one record is one line");
    let record = Record::parse(line.trim_end()).unwrap();
    assert_eq!(record.field("why"), Some("a b\\\\c\\x07"));
    assert_eq!(record.msg, "say \\\"hi\\\"\\n");
}

#[test]
fn empty_text_is_quoted() {
    let line = render(Level::Info, "t", format_args!("m"), &[("name", Value::Str(""))]);
    assert_eq!(line, "level=info target=t msg=\"m\" name=\"\"\n");
}

#[test]
fn invalid_or_reserved_keys_cannot_break_the_line() {
    let line = render(Level::Info, "t", format_args!("m"), &[("Bad Key", Value::U64(1)), ("msg", Value::U64(2))]);
    assert_eq!(line, "level=info target=t msg=\"m\" invalid_key=1 invalid_key=2\n");
    assert!(Record::parse(line.trim_end()).is_ok());
}

#[test]
fn parses_what_it_formats() {
    let line = render(
        Level::Error,
        "fault",
        format_args!("fault"),
        &[("vector", Value::U64(14)), ("exception", Value::Str("#PF")), ("cr2", Value::Hex(0xdead_0000))],
    );
    let record = Record::parse(line.trim_end()).unwrap();
    assert_eq!(record.level, Level::Error);
    assert_eq!(record.target, "fault");
    assert_eq!(record.msg, "fault");
    assert_eq!(record.field("vector"), Some("14"));
    assert_eq!(record.field("exception"), Some("#PF"));
    assert_eq!(record.field("cr2"), Some("0xdead0000"));
    assert_eq!(record.field("absent"), None);
    assert_eq!(record.fields().count(), 3);
}

#[test]
fn rejects_lines_that_are_not_records() {
    for line in [
        "",
        "hello world",
        "level=loud target=t msg=\"m\"",
        "target=t level=info msg=\"m\"",
        "level=info target=t",
        "level=info target=t msg=\"unclosed",
        "level=info target=t msg=\"m\" novalue",
        "level=info target=t msg=\"m\" k=\"v\"x",
        "level=info target=t msg=\"m\" BAD=1",
    ] {
        assert!(Record::parse(line).is_err(), "accepted {line:?}");
    }
}

#[test]
fn an_escaped_quote_does_not_end_a_value() {
    let record = Record::parse(r#"level=info target=t msg="a \" b" k=v"#).unwrap();
    assert_eq!(record.msg, r#"a \" b"#);
    assert_eq!(record.field("k"), Some("v"));
}
