#![allow(clippy::unwrap_used)]

use processops_llm::sse::{MAX_LINE_BYTES, SseDecoder, parse_sse};

fn parse(chunks: &[&[u8]]) -> Vec<String> {
    parse_sse(chunks.iter().copied()).unwrap()
}

#[test]
fn splits_events_on_blank_lines() {
    assert_eq!(
        parse(&[b"data: one\n\ndata: two\n\ndata: [DONE]\n\n"]),
        vec!["one", "two", "[DONE]"]
    );
}

#[test]
fn chunk_boundaries_anywhere_give_the_same_events() {
    let stream =
        "data: {\"a\":\"h\u{e9}llo\"}\r\n\r\n: keep-alive\n\ndata: x\rdata: y\r\rdata: [DONE]\n\n";
    let expected = parse(&[stream.as_bytes()]);
    assert_eq!(expected, vec!["{\"a\":\"h\u{e9}llo\"}", "x\ny", "[DONE]"]);
    let bytes = stream.as_bytes();
    // Every single split point, including inside CRLF and inside the UTF-8 é.
    for cut in 0..=bytes.len() {
        assert_eq!(
            parse(&[&bytes[..cut], &bytes[cut..]]),
            expected,
            "cut at {cut}"
        );
    }
    // And byte by byte.
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(parse(&singles), expected);
}

#[test]
fn crlf_line_endings() {
    assert_eq!(
        parse(&[b"data: a\r\n\r\ndata: b\r\n", b"\r\n"]),
        vec!["a", "b"]
    );
}

#[test]
fn cr_at_chunk_end_then_lf() {
    // The `\r` and `\n` of one CRLF arrive in different chunks; this must not
    // count as an extra blank line (which would end the event early).
    let mut decoder = SseDecoder::new();
    assert!(decoder.push(b"data: a\r").unwrap().is_empty());
    assert!(decoder.push(b"").unwrap().is_empty());
    assert!(decoder.push(b"\ndata: b\r").unwrap().is_empty());
    assert_eq!(decoder.push(b"\n\r\n").unwrap(), vec!["a\nb"]);
}

#[test]
fn comments_and_other_fields_are_ignored() {
    assert_eq!(
        parse(&[b": comment\nevent: message\nid: 7\nretry: 100\ndata: payload\n:another\n\n"]),
        vec!["payload"]
    );
    // A comment-only block dispatches nothing.
    assert!(parse(&[b": ping\n\n: ping\n\n"]).is_empty());
}

#[test]
fn multi_line_data_joined_with_newline() {
    assert_eq!(
        parse(&[b"data: first\ndata:second\ndata\ndata:  indented\n\n"]),
        vec!["first\nsecond\n\n indented"]
    );
}

#[test]
fn final_event_without_blank_line_is_kept() {
    assert_eq!(parse(&[b"data: a\n\ndata: [DONE]"]), vec!["a", "[DONE]"]);
    assert_eq!(parse(&[b"data: a\n\ndata: [DONE]\n"]), vec!["a", "[DONE]"]);
}

#[test]
fn endless_line_is_an_error_not_a_memory_leak() {
    let mut decoder = SseDecoder::new();
    let big = vec![b'x'; 1024 * 1024];
    let mut failed = false;
    for _ in 0..(MAX_LINE_BYTES / big.len() + 2) {
        if decoder.push(&big).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed);
}

#[test]
fn invalid_utf8_does_not_panic() {
    assert_eq!(parse(&[b"data: \xff\xfe\n\n"]), vec!["\u{fffd}\u{fffd}"]);
}
