use super::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An actix-web server on a port of its own that answers each POST with
/// its body and the status the `status` header asks for.
async fn echo_server(keep_alive: Duration) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = |request: HttpRequest, body: web::Bytes| async move {
        let asked = request
            .headers()
            .get("status")
            .and_then(|v| v.to_str().ok());
        let status = asked.and_then(|v| v.parse().ok()).unwrap_or(200);
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body(body)
    };
    let server = HttpServer::new(move || App::new().default_service(web::to(echo)))
        .workers(1)
        .keep_alive(keep_alive)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    addr
}

fn echo(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> Request {
    post(
        &addr.to_string(),
        "/echo",
        headers,
        Bytes::from(body.to_owned()),
    )
}

#[tokio::test]
async fn answers_are_read_whole_on_one_kept_alive_connection() {
    let addr = echo_server(Duration::from_secs(30)).await;
    let client = Client::new(addr);
    for body in ["first", "", &"x".repeat(100_000)] {
        let answer = client.send(&echo(addr, &[], body)).await.unwrap();
        assert_eq!(
            answer,
            Answer {
                status: 200,
                body: body.as_bytes().to_vec()
            }
        );
        assert_eq!(answer.success(), Ok(()));
    }
    assert_eq!(client.idle.lock().unwrap().len(), 1, "one connection, kept");
}

#[tokio::test]
async fn a_non_2xx_answer_is_an_error_naming_status_and_body() {
    let addr = echo_server(Duration::from_secs(30)).await;
    let client = Client::new(addr);
    let answer = client
        .send(&echo(addr, &[("status", "503")], "RabbitMQ is unavailable"))
        .await;
    assert_eq!(
        answer.unwrap().success(),
        Err("HTTP 503: RabbitMQ is unavailable".to_owned())
    );
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_opened_again() {
    let addr = echo_server(Duration::from_millis(200)).await;
    let client = Client::new(addr);
    client.send(&echo(addr, &[], "before")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let answer = client.send(&echo(addr, &[], "after")).await.unwrap();
    assert_eq!(answer.body, b"after");
}

/// A server that reads one request, writes `answer` and closes.
async fn one_answer_server(answer: &'static [u8]) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0; 4096];
        let _ = stream.read(&mut request).await;
        stream.write_all(answer).await.unwrap();
    });
    addr
}

#[tokio::test]
async fn answers_it_cannot_read_are_errors_that_say_why() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            "invalid answer: transfer-encoding chunked",
        ),
        (
            b"HTTP/1.1 200 OK\r\n\r\n",
            "invalid answer: no content-length",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort",
            "mid-answer",
        ),
        (b"", "the server closed the connection without answering"),
    ];
    for (answer, expected) in cases {
        let addr = one_answer_server(answer).await;
        let error = Client::new(addr)
            .send(&echo(addr, &[], "x"))
            .await
            .unwrap_err();
        assert!(
            error.contains(expected),
            "{error:?} should say {expected:?}"
        );
    }
}

#[tokio::test]
async fn an_answer_saying_close_is_not_kept() {
    let addr =
        one_answer_server(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
            .await;
    let client = Client::new(addr);
    assert_eq!(
        client.send(&echo(addr, &[], "x")).await.unwrap().body,
        b"ok"
    );
    assert!(client.idle.lock().unwrap().is_empty());
}

#[test]
fn a_post_is_encoded_as_http_1_1_with_its_length_and_headers() {
    let request = post(
        "127.0.0.1:80",
        "/webhooks/clerk",
        &[("svix-id", "msg_1")],
        "{}".into(),
    );
    assert_eq!(
        [request.head, request.body].concat(),
        "POST /webhooks/clerk HTTP/1.1\r\nhost: 127.0.0.1:80\r\ncontent-length: 2\r\n\
         svix-id: msg_1\r\n\r\n{}"
            .as_bytes()
    );
}
