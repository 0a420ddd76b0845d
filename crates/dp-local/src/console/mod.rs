//! The web console: `GET /console…` on the API's own port shows pipelines, a pipeline's definition graph and runs,
//! and the task runners; `POST /console/action` reruns, cancels or marks finished an instance, and activates or
//! deactivates a pipeline, each after a confirmation page.
//!
//! Access: every request needs the random token dp-local prints (its second stdout line holds the console URL with
//! it); a visit with `?token=` sets it as a `SameSite=Strict`, `HttpOnly` cookie. Actions also need a CSRF value
//! that only pages served with the token carry. Reads and actions go through `dispatch::call`, the API's own path,
//! so the console never has rules of its own. Every response forbids anything from outside this origin (CSP); all
//! assets are compiled into the binary.

mod data;
mod graph;
mod pages;

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use maud::Markup;
use serde_json::json;

use crate::engine::Engine;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
const COOKIE: &str = "dp_console";
/// How many CSRF values stay valid (each page render makes one).
const CSRF_KEPT: usize = 512;
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console of one server: its token and the CSRF values it has handed out.
pub(crate) struct Console {
    token: String,
    csrf: Mutex<VecDeque<String>>,
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Console {
    /// A console with a fresh random token.
    pub(crate) fn new() -> Console {
        Console {
            token: format!("{}{}", random_hex(), random_hex()),
            csrf: Mutex::new(VecDeque::new()),
        }
    }

    /// The token that every console request needs.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    fn new_csrf(&self) -> String {
        let value = random_hex();
        let mut kept = self.csrf.lock().unwrap_or_else(|e| e.into_inner());
        kept.push_back(value.clone());
        while kept.len() > CSRF_KEPT {
            kept.pop_front();
        }
        value
    }

    fn csrf_valid(&self, value: &str) -> bool {
        let kept = self.csrf.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .any(|v| constant_time_eq(v.as_bytes(), value.as_bytes()))
    }

    /// Whether the request carries the token: `?token=` or the cookie. Returns whether the cookie must be set.
    fn authorized(&self, parts: &http::request::Parts) -> Option<bool> {
        let query = parse_form(parts.uri.query().unwrap_or(""));
        if query
            .iter()
            .any(|(k, v)| k == "token" && constant_time_eq(v.as_bytes(), self.token.as_bytes()))
        {
            return Some(true);
        }
        let cookies = parts
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='));
        for (name, value) in cookies {
            if name == COOKIE && constant_time_eq(value.as_bytes(), self.token.as_bytes()) {
                return Some(false);
            }
        }
        None
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `a=1&b=x%20y` as pairs, `+` as space.
pub(crate) fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A form or query value: `+` is a space, then `%XX` escapes are decoded (invalid UTF-8 replaced).
fn decode(text: &str) -> String {
    crate::percent::decode(&text.replace('+', " "))
}

/// `text` percent-encoded for a query value.
pub(crate) fn encode(text: &str) -> String {
    crate::percent::encode(text.as_bytes())
}

fn response(status: StatusCode, content_type: &str) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", "no-store")
}

fn page(status: StatusCode, markup: Markup) -> (http::response::Builder, Bytes) {
    (
        response(status, "text/html; charset=utf-8"),
        Bytes::from(markup.into_string()),
    )
}

/// Answers one console request.
pub(crate) async fn handle(
    console: &Console,
    engine: &Engine,
    parts: &http::request::Parts,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let Some(set_cookie) = console.authorized(parts) else {
        return response(StatusCode::UNAUTHORIZED, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(
                b"401 Unauthorized: the console needs the token that dp-local printed with its URL.\n",
            )))
            .expect("static response");
    };
    let (mut builder, bytes) = route(console, engine, parts, body).await;
    if set_cookie {
        builder = builder.header(
            "set-cookie",
            format!(
                "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict",
                console.token()
            ),
        );
    }
    builder.body(Full::new(bytes)).unwrap_or_else(|_| {
        Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Full::new(Bytes::from_static(b"response error")))
            .expect("static response")
    })
}

async fn route(
    console: &Console,
    engine: &Engine,
    parts: &http::request::Parts,
    body: &[u8],
) -> (http::response::Builder, Bytes) {
    let query = parse_form(parts.uri.query().unwrap_or(""));
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let method = &parts.method;
    match (method.as_str(), parts.uri.path()) {
        ("GET", "/console/assets/app.css") => (
            response(StatusCode::OK, "text/css; charset=utf-8"),
            Bytes::from_static(CSS.as_bytes()),
        ),
        ("GET", "/console/assets/app.js") => (
            response(StatusCode::OK, "text/javascript; charset=utf-8"),
            Bytes::from_static(JS.as_bytes()),
        ),
        ("GET", "/console" | "/console/") => match data::pipelines(engine).await {
            Ok(rows) => page(StatusCode::OK, pages::pipelines(&rows)),
            Err(e) => page(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::message("Error", &e.message),
            ),
        },
        ("GET", "/console/runners") => match data::waiting(engine).await {
            Ok(waiting) => page(StatusCode::OK, pages::runners(&engine.runners(), &waiting)),
            Err(e) => page(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::message("Error", &e.message),
            ),
        },
        ("GET", "/console/pipeline") => {
            let Some(id) = param("id") else {
                return page(
                    StatusCode::BAD_REQUEST,
                    pages::message("Bad request", "Which pipeline? (?id=df-…)"),
                );
            };
            let version = match param("version") {
                Some("active") => "active",
                _ => "latest",
            };
            let status = param("status").filter(|s| pages::STATUSES.contains(s));
            match data::pipeline(engine, id, version).await {
                Ok(view) => page(
                    StatusCode::OK,
                    pages::pipeline(&view, status, &console.new_csrf(), param("done")),
                ),
                Err(e) => page(
                    StatusCode::NOT_FOUND,
                    pages::message("Not found", &e.message),
                ),
            }
        }
        ("GET", "/console/instance") => {
            let (Some(pipeline), Some(id)) = (param("pipeline"), param("id")) else {
                return page(
                    StatusCode::BAD_REQUEST,
                    pages::message("Bad request", "Which instance? (?pipeline=…&id=…)"),
                );
            };
            match data::instance(engine, pipeline, id).await {
                Ok((instance, attempts)) => {
                    let csrf = console.new_csrf();
                    let markup = if parts.headers.contains_key("x-console-fragment") {
                        pages::instance_fragment(pipeline, &instance, &attempts, &csrf)
                    } else {
                        pages::instance_page(pipeline, &instance, &attempts, &csrf)
                    };
                    page(StatusCode::OK, markup)
                }
                Err(e) => page(
                    StatusCode::NOT_FOUND,
                    pages::message("Not found", &e.message),
                ),
            }
        }
        ("POST", "/console/action") => action(console, engine, body).await,
        _ => page(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "No such console page."),
        ),
    }
}

/// An action: refused without a valid CSRF value; without `confirmed=yes` it answers the confirmation page;
/// with it, it calls the API and redirects to the pipeline page with what was done.
async fn action(
    console: &Console,
    engine: &Engine,
    body: &[u8],
) -> (http::response::Builder, Bytes) {
    let form = parse_form(&String::from_utf8_lossy(body));
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !get("csrf").is_some_and(|v| console.csrf_valid(v)) {
        return page(
            StatusCode::FORBIDDEN,
            pages::message(
                "Forbidden",
                "This action did not come from a console page (no valid CSRF value).",
            ),
        );
    }
    let (Some(kind), Some(pipeline)) = (get("action"), get("pipeline")) else {
        return page(
            StatusCode::BAD_REQUEST,
            pages::message("Bad request", "An action needs action and pipeline."),
        );
    };
    let object = get("object").filter(|o| !o.is_empty());
    let call = match (kind, object) {
        ("rerun", Some(o)) => (
            "SetStatus",
            json!({"pipelineId": pipeline, "objectIds": [o], "status": "RERUN"}),
        ),
        ("cancel", Some(o)) => (
            "SetStatus",
            json!({"pipelineId": pipeline, "objectIds": [o], "status": "CANCEL"}),
        ),
        ("mark-finished", Some(o)) => (
            "SetStatus",
            json!({"pipelineId": pipeline, "objectIds": [o], "status": "MARK_FINISHED"}),
        ),
        ("activate", _) => ("ActivatePipeline", json!({"pipelineId": pipeline})),
        ("deactivate", _) => ("DeactivatePipeline", json!({"pipelineId": pipeline})),
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                pages::message(
                    "Bad request",
                    &format!("Unknown action {kind:?} (or no instance named)"),
                ),
            );
        }
    };
    if get("confirmed") != Some("yes") {
        return page(
            StatusCode::OK,
            pages::confirm(&console.new_csrf(), kind, pipeline, object),
        );
    }
    match data::api(engine, call.0, call.1).await {
        Ok(_) => {
            let done = format!("Done: {}.", pages::describe_action(kind, pipeline, object));
            let location = format!(
                "/console/pipeline?id={}&done={}",
                encode(pipeline),
                encode(&done)
            );
            (
                response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8")
                    .header("location", location),
                Bytes::from(done),
            )
        }
        Err(e) => page(
            StatusCode::CONFLICT,
            pages::message("The service refused", &format!("{}: {}", e.code, e.message)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        assert_eq!(
            parse_form("a=1&b=x%20y+z&c=%E2%9C%93&d=%zz&e"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "✓".into()),
                ("d".into(), "%zz".into()),
                ("e".into(), "".into()),
            ]
        );
        assert_eq!(
            decode(&encode("@Act_2026-01-01T00:00:00 & ✓")),
            "@Act_2026-01-01T00:00:00 & ✓"
        );
    }
}
