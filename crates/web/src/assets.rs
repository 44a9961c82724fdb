//! The pages' files, built into the binary: plain HTML, CSS and JavaScript with no build step and
//! nothing fetched from elsewhere at run time.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../assets/index.html");
const APP: &str = include_str!("../assets/app.js");
const GUEST: &str = include_str!("../assets/guest.html");
const GUEST_APP: &str = include_str!("../assets/guest.js");
const STYLE: &str = include_str!("../assets/style.css");
const COMMON: &str = include_str!("../assets/common.js");

/// The page on this machine's files.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| file("text/html; charset=utf-8", INDEX)))
        .route("/app.js", get(|| file("text/javascript; charset=utf-8", APP)))
        .merge(shared())
}

/// The guest page's files.
pub(crate) fn guest_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| file("text/html; charset=utf-8", GUEST)))
        .route("/guest.js", get(|| file("text/javascript; charset=utf-8", GUEST_APP)))
        .merge(shared())
}

/// The files both pages load.
fn shared<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/common.js", get(|| file("text/javascript; charset=utf-8", COMMON)))
        .route("/style.css", get(|| file("text/css; charset=utf-8", STYLE)))
}

async fn file(kind: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body)
}
