//! Small lexing helpers shared by the header parsers (`Link`, `Warning`).

/// Skips spaces and tabs.
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Reads a quoted string starting at the opening quote: the unescaped content, the index after
/// the closing quote (or the end), and whether the closing quote was found.
pub(crate) fn quoted(b: &[u8], mut i: usize) -> (String, usize, bool) {
    let mut out = Vec::new();
    i += 1;
    while i < b.len() {
        match b[i] {
            b'"' => return (String::from_utf8_lossy(&out).into_owned(), i + 1, true),
            b'\\' if i + 1 < b.len() => {
                out.push(b[i + 1]);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), i, false)
}
