//! Test-only routes (feature `test-hooks`, enabled only by this crate's own tests): ways for the leak
//! tests to induce failures that no production request can trigger.

/// POST /__test/panic: reads the request as any handler would, then panics, so a test can check
/// what a panic leaves in the response, the log and the panic output.
#[poem::handler]
pub async fn panic(req: &poem::Request, body: String) -> &'static str {
    let has_auth = req.headers().contains_key(poem::http::header::AUTHORIZATION);
    panic!(
        "induced panic (test hook): {} body bytes, authorization header present: {has_auth}",
        body.len()
    );
}
