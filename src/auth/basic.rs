//! HTTP Basic authentication.

/// The `Authorization` header value for `user:pass`.
pub fn header(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        crate::base64::encode(format!("{user}:{pass}").as_bytes())
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_table() {
        let cases = [
            ("user", "pass", "Basic dXNlcjpwYXNz"),
            ("", "", "Basic Og=="),
            ("a", "p:w", "Basic YTpwOnc="),
            ("ü", "x", "Basic w7w6eA=="),
        ];
        for (u, p, want) in cases {
            assert_eq!(super::header(u, p), want, "{u}:{p}");
        }
    }
}
