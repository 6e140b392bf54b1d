//! A fake of Clerk's Backend API user endpoints, on 127.0.0.1: the list
//! (`GET /v1/users`, newest first as `order_by=-created_at` asks), the count
//! (`GET /v1/users/count`) and one user (`GET /v1/users/{id}`), with faults
//! to inject; it keeps every request and when it came.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub const KEY: &str = "sk_test_reconcile_fake_key";

#[derive(Debug)]
pub enum Fault {
    /// Answer this status (with this Retry-After).
    Status(u16, Option<&'static str>),
    /// Answer 200 with this body.
    Body(&'static str),
    /// Answer 200 with a body of this many MiB, streamed (no Content-Length).
    HugeBody(usize),
}

#[derive(Default)]
struct State {
    /// Newest first, as `order_by=-created_at` lists them.
    users: Vec<Value>,
    /// In Clerk, but skipped by the list.
    hidden: HashSet<String>,
    /// `{"data": [...], "total_count": N}` rather than an array.
    paginated: bool,
    /// Answered, one each, before anything else.
    faults: VecDeque<Fault>,
    /// From this many requests on, answer this status.
    fail_from: Option<(usize, u16)>,
    /// Path and query of every request.
    requests: Vec<String>,
    /// When each request came.
    arrivals: Vec<Instant>,
    /// Requests since the start or the last `fail_from`.
    answered: usize,
}

impl State {
    /// The users the list shows: all but the hidden ones, in order.
    fn listed(&self) -> impl Iterator<Item = &Value> {
        self.users
            .iter()
            .filter(|u| !self.hidden.contains(u["id"].as_str().unwrap_or_default()))
    }
}

/// Stops serving when dropped.
pub struct FakeClerk {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for FakeClerk {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::fmt::Debug for FakeClerk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeClerk").field("url", &self.url).finish()
    }
}

impl FakeClerk {
    pub async fn start(users: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(State {
            users,
            ..State::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("the fake Clerk cannot listen: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the fake Clerk has no address: {e}"))
            .port();
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap_or_else(|e| panic!("the fake Clerk cannot serve: {e}"))
        .run();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            server: tokio::spawn(server),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_paginated(&self, paginated: bool) {
        self.state().paginated = paginated;
    }

    pub fn hide_from_list(&self, user: &str) {
        self.state().hidden.insert(user.to_owned());
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// After `requests` more requests, answer `status` to every one.
    pub fn fail_from(&self, requests: usize, status: u16) {
        let mut state = self.state();
        state.fail_from = Some((requests, status));
        state.answered = 0;
    }

    /// Answer again after `fail_from`.
    pub fn recover(&self) {
        self.state().fail_from = None;
    }

    /// Requests so far; forgets them.
    pub fn requests(&self) -> Vec<String> {
        self.state().arrivals.clear();
        std::mem::take(&mut self.state().requests)
    }

    /// When each request so far came; forgets them.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.state().requests.clear();
        std::mem::take(&mut self.state().arrivals)
    }
}

fn status(code: u16) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(code)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(json!({"errors": [{"message": "fake", "code": "fake"}]}))
}

async fn answer(request: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    state.requests.push(request.uri().to_string());
    state.arrivals.push(Instant::now());
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bearer {KEY}").as_str());
    if !authorized {
        return status(401);
    }
    state.answered += 1;
    let requests = state.answered;
    if let Some((_, code)) = state.fail_from.filter(|(from, _)| requests > *from) {
        return status(code);
    }
    match state.faults.pop_front() {
        Some(Fault::Status(code, retry_after)) => {
            let mut response = status(code);
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static(seconds),
                );
            }
            return response;
        }
        Some(Fault::Body(body)) => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .body(body);
        }
        Some(Fault::HugeBody(mebibytes)) => {
            let chunk = actix_web::web::Bytes::from(vec![b' '; 1024 * 1024]);
            let chunks = futures::stream::iter(
                (0..mebibytes).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            return HttpResponse::Ok()
                .content_type("application/json")
                .streaming(chunks);
        }
        None => {}
    }
    let path = request.path();
    if path == "/v1/users" {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(request.query_string().as_bytes())
                .into_owned()
                .collect();
        let number = |name: &str, default: usize| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(default)
        };
        let (limit, offset) = (number("limit", 10), number("offset", 0));
        let listed: Vec<&Value> = state.listed().collect();
        let page: Vec<&Value> = listed.iter().skip(offset).take(limit).copied().collect();
        return if state.paginated {
            HttpResponse::Ok().json(json!({"data": page, "total_count": listed.len()}))
        } else {
            HttpResponse::Ok().json(page)
        };
    }
    if path == "/v1/users/count" {
        let listed = state.listed().count();
        return HttpResponse::Ok().json(json!({"object": "total_count", "total_count": listed}));
    }
    if let Some(id) = path.strip_prefix("/v1/users/") {
        return match state.users.iter().find(|u| u["id"] == id) {
            Some(user) => HttpResponse::Ok().json(user),
            None => status(404),
        };
    }
    status(404)
}
