//! Small HTML helpers shared by the pages.

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Seconds with one decimal from history nanoseconds: `12.3 s`.
pub fn secs(ns: u64) -> String {
    format!("{:.1} s", ns as f64 / 1e9)
}

/// `12%` of `part` in `whole`, or `-` when there is nothing.
pub fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.0}%", 100.0 * part as f64 / whole as f64)
    }
}

/// A path relative to `base`, with `/` separators, for a link.
pub fn href(base: &std::path::Path, target: &std::path::Path) -> String {
    let rel = target.strip_prefix(base).unwrap_or(target);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .map(|c| {
            c.chars()
                .map(|ch| match ch {
                    ' ' => "%20".to_string(),
                    '#' => "%23".to_string(),
                    '?' => "%3F".to_string(),
                    '%' => "%25".to_string(),
                    ch => ch.to_string(),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_links() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(pct(1, 3), "33%");
        assert_eq!(pct(0, 0), "-");
        let base = std::path::Path::new("/h");
        assert_eq!(
            href(base, std::path::Path::new("/h/r 1/report.html")),
            "r%201/report.html"
        );
    }
}
