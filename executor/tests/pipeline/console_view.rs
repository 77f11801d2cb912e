//! The operator console's view of what the pipeline recorded: sign in as a browser does (the
//! sign-in form's CSRF token and cookie, then the session cookie) and read a page's HTML.

use crate::harness::{ADMIN, Pipeline};

/// The value of `name="csrf_token"` in a page.
fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf_token\" value=\"").expect("a CSRF field") + 25;
    page[at..at + 64].to_owned()
}

/// The `name=value` pairs a response sets, to send back as a Cookie header.
fn cookies_of(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .filter(|pair| !pair.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Sign in to the console and fetch `path` (200 expected); the page's HTML.
pub async fn console_page(p: &Pipeline, path: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http
        .get(format!("{}/console/sign-in", p.base))
        .send()
        .await
        .unwrap();
    let pre = cookies_of(&form);
    let csrf = csrf_in(&form.text().await.unwrap());
    // The admin token and the CSRF token are URL-safe: no form encoding needed.
    let signed_in = http
        .post(format!("{}/console/sign-in", p.base))
        .header("cookie", pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}&token={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "console sign-in");
    let session = cookies_of(&signed_in);
    let page = http
        .get(format!("{}{path}", p.base))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "{path}");
    page.text().await.unwrap()
}

/// The part of `page` from the element with `id` to the element with `until` (or the end).
pub fn between<'a>(page: &'a str, id: &str, until: Option<&str>) -> &'a str {
    let find = |id: &str| {
        page.find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in {page}"))
    };
    let start = find(id);
    &page[start..until.map_or(page.len(), find)]
}
