//! A fake of Clerk's Backend API user endpoints, on 127.0.0.1.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

pub const KEY: &str = "sk_test_reconcile_fake_key";

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
}

pub struct FakeClerk {
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl FakeClerk {
    pub async fn start(users: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(State {
            users,
            ..State::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            _server: tokio::spawn(server),
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

    pub fn fail_from(&self, requests: usize, status: u16) {
        self.state().fail_from = Some((requests, status));
    }

    /// Requests so far; forgets them.
    pub fn requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state().requests)
    }
}

fn status(code: u16) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(code).unwrap();
    HttpResponse::build(status).json(json!({"errors": [{"message": "fake", "code": "fake"}]}))
}

async fn answer(request: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    state.requests.push(request.uri().to_string());
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bearer {KEY}").as_str());
    if !authorized {
        return status(401);
    }
    let requests = state.requests.len();
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
        let listed: Vec<&Value> = state
            .users
            .iter()
            .filter(|u| !state.hidden.contains(u["id"].as_str().unwrap_or_default()))
            .collect();
        let page: Vec<&Value> = listed.iter().skip(offset).take(limit).copied().collect();
        return if state.paginated {
            HttpResponse::Ok().json(json!({"data": page, "total_count": listed.len()}))
        } else {
            HttpResponse::Ok().json(page)
        };
    }
    if let Some(id) = path.strip_prefix("/v1/users/") {
        return match state.users.iter().find(|u| u["id"] == id) {
            Some(user) => HttpResponse::Ok().json(user),
            None => status(404),
        };
    }
    status(404)
}
