//! HTTPS sites: TLS with the world's own CA, HTTP/2 by ALPN, plain HTTP redirected.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;

const SECURE: &str = "secure-gallery.sim";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_sites_speak_http2_with_a_certificate_from_the_exported_ca() {
    let world = small(41);
    let ip = resolve(&world, SECURE).unwrap();
    let port = world.https_port().unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls_config(&world, &[b"h2", b"http/1.1"]));
    let tcp = tokio::net::TcpStream::connect((ip, port)).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from(SECURE).unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut fetch = |path: String| {
        let request = hyper::Request::get(format!("https://{SECURE}:{port}{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request);
        async move {
            let response = response.await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.into_body().collect().await.unwrap().to_bytes(),
            )
        }
    };
    let (status, index) = fetch("/".to_owned()).await;
    assert_eq!(status, 200);
    let index = String::from_utf8_lossy(&index).into_owned();
    let album = links(&index)
        .into_iter()
        .find(|l| l.starts_with("/album/"))
        .unwrap();
    let (status, page) = fetch(album).await;
    assert_eq!(status, 200);
    let image = links(&String::from_utf8_lossy(&page))
        .into_iter()
        .find(|l| l.starts_with("/images/"))
        .unwrap();
    let (status, over_h2) = fetch(image.clone()).await;
    assert_eq!(status, 200);
    // The same bytes over HTTP/1.1 with TLS, and the ground truth names the https URL.
    let image_url = world.url(SECURE, &image);
    assert!(image_url.starts_with("https://"));
    let world = Arc::new(world);
    let w = world.clone();
    let over_h1 = tokio::task::spawn_blocking(move || get_url(&w, &image_url))
        .await
        .unwrap();
    assert_eq!(over_h1.status, 200);
    assert_eq!(over_h1.body, over_h2.to_vec());
    aranea_hash::hash_media(&over_h2, &aranea_hash::Limits::default()).unwrap();
    let log = world.requests_for(SECURE);
    assert!(log.len() >= 4 && log.iter().all(|r| r.local.port() == port));
}

#[test]
fn plain_http_to_an_https_site_redirects_to_https() {
    let world = small(42);
    let r = get(&world, SECURE, "/album/x/?page=2");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location").unwrap(),
        format!(
            "https://{SECURE}:{}/album/x/?page=2",
            world.https_port().unwrap()
        )
    );
    assert_eq!(
        get_tls(&world, &format!("www.{SECURE}"), "/").status,
        200,
        "aliases are on the certificate"
    );
}

#[test]
fn a_client_that_does_not_trust_the_ca_is_refused_and_the_ca_is_deterministic() {
    let world = small(43);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut connection =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from(SECURE).unwrap())
            .unwrap();
    let ip = resolve(&world, SECURE).unwrap();
    let mut tcp = std::net::TcpStream::connect((ip, world.https_port().unwrap())).unwrap();
    let error = loop {
        match connection.complete_io(&mut tcp) {
            Ok(_) if !connection.is_handshaking() => {
                panic!("handshake succeeded without trusting the CA")
            }
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(
        error.to_string().to_lowercase().contains("issuer"),
        "{error}"
    );
    let pem = world.ca_cert_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        std::fs::read_to_string(world.ca_cert_path().unwrap()).unwrap(),
        pem
    );
    assert_eq!(small(43).ca_cert_pem().unwrap(), pem);
    assert_ne!(small(44).ca_cert_pem().unwrap(), pem);
}

#[test]
fn garbage_on_the_https_port_does_not_stop_it() {
    use std::io::{Read, Write};
    let world = small(45);
    let ip = resolve(&world, SECURE).unwrap();
    let addr = std::net::SocketAddr::from((ip, world.https_port().unwrap()));
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xFF, 0xFF, 0x01],
        &[0u8; 10_000],
        b"",
    ] {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
    assert_eq!(get_tls(&world, SECURE, "/").status, 200);
}
