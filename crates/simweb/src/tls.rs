//! TLS and HTTP/2 for sites marked `https`: a self-signed certificate authority (exported as
//! PEM so clients can trust it), one server certificate naming every HTTPS site, and hyper
//! serving HTTP/2 or HTTP/1.1 as the client's ALPN asks.
//!
//! Keys are Ed25519 derived from the seed and certificates have fixed dates and serials, so
//! the CA is as deterministic as the rest of the world. Misbehaving bodies (lying lengths,
//! drips, endless streams) cannot be expressed through hyper and are served plainly here.
//! Must not be used for anything but the simulated world: the CA key is derivable from a seed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, SerialNumber, date_time_ymd,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::error::SimWebError;
use crate::http::{Body, Request, Response, Service};
use crate::rng::Rng;
use crate::site::HostService;

const MAX_BODY: usize = 1024 * 1024;
/// What an endless body becomes over TLS.
const ENDLESS_STANDIN: usize = 1024 * 1024;

pub struct Pki {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

fn tls_error(reason: impl std::fmt::Display) -> SimWebError {
    SimWebError::Tls(reason.to_string())
}

/// An Ed25519 key from the seed: PKCS#8 v1 is a fixed prefix and the 32-byte secret.
fn ed25519_key(seed: u64, label: &str) -> Result<(KeyPair, Vec<u8>), SimWebError> {
    let mut rng = Rng::derive(seed, label);
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    for _ in 0..4 {
        der.extend_from_slice(&rng.next_u64().to_be_bytes());
    }
    let key = KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(der.clone()),
        &PKCS_ED25519,
    )
    .map_err(tls_error)?;
    Ok((key, der))
}

fn params(
    names: Vec<String>,
    common_name: &str,
    serial: u64,
) -> Result<CertificateParams, SimWebError> {
    let mut params = CertificateParams::new(names).map_err(tls_error)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Aranea simulated internet");
    params.distinguished_name = dn;
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2045, 1, 1);
    params.serial_number = Some(SerialNumber::from(serial));
    Ok(params)
}

/// The CA and a server certificate for `names` (the HTTPS sites and their aliases).
pub fn build(seed: u64, names: &[String]) -> Result<Pki, SimWebError> {
    let alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    issue(seed, names, "tls:leaf", 2, alpn)
}

/// The same CA and a certificate for the mail server's `names` (its address, `mx.simweb.sim`).
pub fn build_mail(seed: u64, names: &[String]) -> Result<Pki, SimWebError> {
    issue(seed, names, "tls:mail-leaf", 3, Vec::new())
}

fn issue(
    seed: u64,
    names: &[String],
    leaf_label: &str,
    leaf_serial: u64,
    alpn: Vec<Vec<u8>>,
) -> Result<Pki, SimWebError> {
    let (ca_key, _) = ed25519_key(seed, "tls:ca")?;
    let mut ca_params = params(Vec::new(), "Simweb Test Root CA", 1)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_error)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let (leaf_key, leaf_der) = ed25519_key(seed, leaf_label)?;
    let first = names
        .first()
        .cloned()
        .unwrap_or_else(|| "simweb.sim".to_owned());
    let mut leaf_params = params(names.to_vec(), &first, leaf_serial)?;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(tls_error)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_der)),
        )
        .map_err(tls_error)?;
    config.alpn_protocols = alpn;
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

pub async fn serve(
    listener: std::net::TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<HostService>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let Ok(local) = stream.local_addr() else {
                return;
            };
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
            else {
                return;
            };
            let handler = hyper::service::service_fn(move |request| {
                let service = service.clone();
                async move { Ok::<_, Infallible>(handle(&service, request, local, peer).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), handler)
                .await;
        });
    }
}

async fn handle(
    service: &HostService,
    request: hyper::Request<Incoming>,
    local: SocketAddr,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => return plain(413, "body too large"),
    };
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    // HTTP/2 carries the host in :authority, not in a Host header.
    if let Some(authority) = parts.uri.authority() {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("host"));
        headers.push(("Host".to_owned(), authority.as_str().to_owned()));
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let request = Request {
        method: parts.method.as_str().to_owned(),
        target,
        headers,
        body,
        local,
        peer,
        tls: true,
    };
    let response = service.call(request).await;
    if !response.delay.is_zero() {
        tokio::time::sleep(response.delay).await;
    }
    convert(response)
}

fn plain(status: u16, text: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
}

fn convert(response: Response) -> hyper::Response<Full<Bytes>> {
    let bytes = match response.body {
        Body::Full(bytes) | Body::LyingLength { actual: bytes, .. } => {
            Bytes::from(bytes.as_ref().clone())
        }
        Body::Drip { total, .. } => {
            Bytes::from(vec![
                b'.';
                usize::try_from(total).unwrap_or(0).min(MAX_BODY)
            ])
        }
        Body::Endless => Bytes::from(vec![b'A'; ENDLESS_STANDIN]),
    };
    let mut out = hyper::Response::new(Full::new(bytes));
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            out.headers_mut().append(name, value);
        }
    }
    out
}
