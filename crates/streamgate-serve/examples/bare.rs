//! The floor `scripts/bench-serve.sh` measures `streamgate serve` against: a hyper server
//! that answers every request 200 with an empty body, checking nothing. It runs on serve's
//! own runtime and HTTP/1.1 settings ([`streamgate_serve::runtime`],
//! [`streamgate_serve::http1_builder`]), so the difference between the two is what
//! deciding costs.
//!
//! `cargo run --profile cli -p streamgate-serve --example bare -- 127.0.0.1:9091`

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9091".into()).parse()?;
    streamgate_serve::runtime()?.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let service = service_fn(|_req| async { Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new())) });
                // A client that goes away mid-request is no concern of this baseline.
                let _ = streamgate_serve::http1_builder().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}
