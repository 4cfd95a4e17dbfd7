//! Built-in HTTPS: a PEM certificate chain and key (rustls), checked at start so that any problem
//! is a one-line error naming the file, re-read on SIGHUP so a renewed certificate needs no
//! restart, and the listener `serve` hands to axum, which finishes TLS handshakes off the accept
//! path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

/// A client that opens a connection and sends nothing holds a handshake slot at most this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the certificate chain and its private key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {}: {reason}; --tls-cert (LODE_TLS_CERT) takes a PEM file with the server's certificate first, then its chain", path.display())]
    Cert { path: PathBuf, reason: String },
    #[error("TLS key {}: {reason}; --tls-key (LODE_TLS_KEY) takes a PEM file with one unencrypted private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("TLS key {} does not match certificate {}: give the key the certificate was issued for", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read it ({e})"))
}

fn pem_reason(e: pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "no PEM block of the expected kind in it".to_string(),
        other => format!("not valid PEM ({other})"),
    }
}

/// Reads and checks a certificate chain and its key.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_err = |reason| TlsError::Cert {
        path: files.cert.clone(),
        reason,
    };
    let key_err = |reason| TlsError::Key {
        path: files.key.clone(),
        reason,
    };
    let cert_pem = read(&files.cert).map_err(cert_err)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(pem_reason(e)))?;
    if chain.is_empty() {
        return Err(cert_err("no PEM certificate in it".to_string()));
    }
    let key_pem = read(&files.key).map_err(key_err)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| key_err(pem_reason(e)))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(format!("unusable key ({e})")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::Mismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            })
        }
        Err(e) => Err(cert_err(format!("not a usable certificate ({e})"))),
    }
}

/// The certificate handed to every new handshake; replaced whole on reload.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|c| Arc::clone(&c))
    }
}

/// The server's TLS settings: what `serve` accepts connections with.
pub struct ServerTls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCert>,
    acceptor: TlsAcceptor,
}

impl ServerTls {
    /// Loads the certificate and key, failing on anything a client would later trip over.
    pub fn load(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let provider = provider();
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(load(&files, &provider)?))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // HTTP/1.1 as over plain HTTP: clients open a connection per parallel transfer, the
        // pattern the upload path is built for.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            files,
            provider,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Reads the files again; new handshakes use the new certificate, and on any error the
    /// one in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load(&self.files, &self.provider)?);
        if let Ok(mut c) = self.current.0.write() {
            *c = fresh;
        }
        Ok(())
    }

    /// Reloads on every SIGHUP for as long as the process runs.
    pub fn reload_on_sighup(self: &Arc<Self>) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot watch SIGHUP; a renewed certificate needs a restart");
            return;
        };
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        cert = %tls.files.cert.display(),
                        "SIGHUP: TLS certificate reloaded"
                    ),
                    Err(e) => tracing::error!("SIGHUP: keeping the current certificate: {e}"),
                }
            }
        });
    }
}

/// Connections as `serve` receives them: plain TCP, or TLS with the handshake already done.
pub struct Incoming {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl Incoming {
    pub fn new(tcp: TcpListener, tls: Option<&ServerTls>) -> Incoming {
        Incoming {
            tcp,
            tls: tls.map(|t| t.acceptor.clone()),
            handshakes: JoinSet::new(),
        }
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    // Without it, each TLS record waits for the previous one's acknowledgement.
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some((s, addr)),
        Ok(Err(e)) => {
            tracing::debug!(%addr, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%addr, "TLS handshake timed out");
            None
        }
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let Incoming {
            tcp,
            tls,
            handshakes,
        } = self;
        let Some(acceptor) = tls else {
            let (s, a) = axum::serve::Listener::accept(tcp).await;
            return (Either::Left(s), a);
        };
        // Handshakes run as their own tasks, so a slow client never holds up the next accept.
        loop {
            tokio::select! {
                (stream, addr) = axum::serve::Listener::accept(tcp) => {
                    handshakes.spawn(handshake(acceptor.clone(), stream, addr));
                }
                Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                    if let Ok(Some((s, a))) = done {
                        return (Either::Right(s), a);
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> TlsFiles {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }

    #[test]
    fn loads_a_matching_pair_and_names_the_file_of_each_problem() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = pair(dir.path(), "a");
        let b = pair(dir.path(), "b");
        assert!(ServerTls::load(a.clone()).is_ok());

        let mixed = TlsFiles {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        let e = ServerTls::load(mixed).err().expect("mismatch").to_string();
        assert!(e.contains("does not match") && e.contains("b.key"), "{e}");

        let missing = TlsFiles {
            cert: dir.path().join("none.crt"),
            key: a.key.clone(),
        };
        let e = ServerTls::load(missing).err().expect("missing").to_string();
        assert!(e.contains("none.crt") && e.contains("cannot read"), "{e}");

        let swapped = TlsFiles {
            cert: a.key.clone(),
            key: a.cert.clone(),
        };
        let e = ServerTls::load(swapped).err().expect("swapped").to_string();
        assert!(
            e.contains("a.key") && e.contains("no PEM certificate"),
            "{e}"
        );
    }

    #[test]
    fn reload_keeps_the_old_certificate_when_the_new_files_are_bad() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = pair(dir.path(), "a");
        let tls = ServerTls::load(a.clone()).expect("load");
        let before = tls.current.0.read().expect("lock").cert.clone();
        std::fs::write(&a.cert, "not pem").expect("write");
        assert!(tls.reload().is_err());
        assert_eq!(tls.current.0.read().expect("lock").cert, before);
        // A renewed pair at the same paths is picked up.
        let renewed = pair(dir.path(), "a");
        tls.reload().expect("reload");
        assert_ne!(tls.current.0.read().expect("lock").cert, before);
        assert_eq!(renewed, a);
    }
}
