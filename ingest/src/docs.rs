//! The Swagger UI page at /docs and its Content-Security-Policy. poem-openapi writes the UI's
//! script and styles inline; instead of allowing every inline script (`unsafe-inline`), the policy
//! names the SHA-256 of each one found in the page we serve, computed at start-up.

use base64::Engine;
use poem::endpoint::make_sync;
use poem::http::HeaderValue;
use poem::web::Html;
use poem::{Endpoint, Route};
use sha2::{Digest, Sha256};

/// The page and the policy that lets exactly its own inline code run.
pub struct DocsPage {
    html: String,
    csp: HeaderValue,
}

impl DocsPage {
    pub fn new(html: String) -> Self {
        let scripts = hashes(&html, "script");
        let styles = hashes(&html, "style");
        let csp = format!(
            "default-src 'none'; script-src {scripts}; style-src {styles}; img-src 'self' data:; \
             font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'"
        );
        DocsPage {
            html,
            csp: HeaderValue::from_str(&csp).expect("hashes and keywords are header-safe"),
        }
    }

    /// The Content-Security-Policy of every /docs response.
    pub fn csp(&self) -> HeaderValue {
        self.csp.clone()
    }

    pub fn endpoint(&self) -> impl Endpoint + 'static {
        let html = self.html.clone();
        Route::new().at("/", make_sync(move |_| Html(html.clone())))
    }
}

/// `'sha256-…'` of the text of every inline `<tag …>…</tag>` element, space-separated
/// (`'none'` when there is none).
pub fn hashes(html: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        // `<styles>` or `<scripting>` are other tags.
        if !after.starts_with(['>', ' ', '\t', '\n', '\r']) {
            rest = after;
            continue;
        }
        let Some(end_of_open) = after.find('>') else { break };
        let body = &after[end_of_open + 1..];
        let Some(len) = body.find(&close) else { break };
        let digest = Sha256::digest(&body.as_bytes()[..len]);
        out.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &body[len + close.len()..];
    }
    if out.is_empty() {
        "'none'".to_owned()
    } else {
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_inline_element_is_hashed_and_nothing_is_left_open() {
        let page = "<html><head><style charset=\"UTF-8\">a{}</style><script>x()</script></head>\
                    <body><scripting></scripting><script>\n y() \n</script></body></html>";
        // sha256("x()") and sha256("\n y() \n"), base64, as a browser computes them.
        let scripts = hashes(page, "script");
        let expected: Vec<String> = ["x()", "\n y() \n"]
            .iter()
            .map(|s| {
                format!(
                    "'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s))
                )
            })
            .collect();
        assert_eq!(scripts, expected.join(" "));
        assert_eq!(hashes(page, "style").matches("'sha256-").count(), 1);
        assert_eq!(hashes("<p>no code</p>", "script"), "'none'");
    }

    #[test]
    fn the_served_page_runs_only_its_own_inline_code() {
        let page = DocsPage::new(crate::api::service().swagger_ui_html());
        let csp = page.csp().to_str().unwrap().to_owned();
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        // poem-openapi's page: the bundle and the start-up script, one stylesheet.
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap();
        assert_eq!(script_src.matches("'sha256-").count(), 2, "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}
