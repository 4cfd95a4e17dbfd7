//! Tokens: issuing, verifying and resolving them to a principal with roles on projects.
//!
//! A token is an HS256 JWT signed with the server's secret. Its `jti` names a row in the index,
//! which holds the scope, role, expiry and revocation; only the token's SHA-256 is stored, so a
//! copy of the database does not yield usable tokens. Verified rows and resolved roles are cached
//! for a moment to keep the hot path off the index; changes made through this server's API clear
//! the cache at once, changes made with `lode-server admin` or through another server sharing the
//! index apply within `CACHE_TTL` (a revoked token is refused by every server within a second).

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lode_proto::api::{CreatedToken, TokenClaims, WhoAmI};
use lode_proto::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::{now, Index, IndexError, NewToken, TokenRow};

const CACHE_TTL: Duration = Duration::from_secs(1);
const SECRET_FILE: &str = "secret";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send 'Authorization: Bearer <token>' or HTTP Basic auth with the token as password")]
    Missing,
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    #[error("invalid token")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("token has been revoked")]
    Revoked,
    #[error("{0}")]
    Internal(String),
    #[error("signing a token: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Who is calling, as established by a verified token.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub token_id: String,
    pub scope: Scope,
}

#[derive(Debug, Clone)]
pub(crate) enum Scope {
    Project { id: i64, name: String, role: Role },
    User { id: i64, name: String, admin: bool },
}

impl Principal {
    pub(crate) fn is_server_admin(&self) -> bool {
        matches!(self.scope, Scope::User { admin: true, .. })
    }

    pub(crate) fn user_id(&self) -> Option<i64> {
        match self.scope {
            Scope::User { id, .. } => Some(id),
            Scope::Project { .. } => None,
        }
    }

    /// How this caller appears in the audit log; never contains the token.
    pub(crate) fn actor(&self) -> String {
        let short = &self.token_id[..self.token_id.len().min(8)];
        match &self.scope {
            Scope::Project { name, .. } => format!("token:{short}(project:{name})"),
            Scope::User { name, .. } => format!("user:{name}(token:{short})"),
        }
    }

    pub(crate) fn whoami(&self) -> WhoAmI {
        match &self.scope {
            Scope::Project { name, role, .. } => WhoAmI {
                token_id: self.token_id.clone(),
                scope: "project".into(),
                project: Some(name.clone()),
                user: None,
                role: Some(*role),
                server_admin: false,
            },
            Scope::User { name, admin, .. } => WhoAmI {
                token_id: self.token_id.clone(),
                scope: "user".into(),
                project: None,
                user: Some(name.clone()),
                role: None,
                server_admin: *admin,
            },
        }
    }
}

/// Reads the signing secret from the data folder, creating it (mode 0600) on first use.
pub(crate) fn load_or_create_secret(data: &Path) -> std::io::Result<Vec<u8>> {
    load_or_create_secret_file(&data.join(SECRET_FILE))
}

/// Reads the signing secret from `path` (64 or more hex digits), creating it (mode 0600) when it
/// does not exist; of servers creating it at once, one wins and all read its secret.
pub(crate) fn load_or_create_secret_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let path = path.to_path_buf();
    match fs::read_to_string(&path) {
        Ok(s) => {
            let meta = fs::metadata(&path)?;
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            }
            hex::decode(s.trim())
                .ok()
                .filter(|b| b.len() >= 32)
                .ok_or_else(|| {
                    std::io::Error::other(format!(
                        "{} is not a valid secret (64+ hex digits); remove it to make a new one (this invalidates every token)",
                        path.display()
                    ))
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = vec![0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            // Written under a temporary name and linked into place, so no reader ever sees a
            // partial secret and of two writers one wins.
            let partial = path.with_extension(format!("partial.{}", std::process::id()));
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)?;
            f.write_all(hex::encode(&secret).as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            let linked = fs::hard_link(&partial, &path);
            fs::remove_file(&partial)?;
            match linked {
                Ok(()) => Ok(secret),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_secret_file(&path)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Pulls the token out of `Authorization: Bearer ...` or `Authorization: Basic ...` (password).
pub(crate) fn credential(headers: &HeaderMap) -> Result<String, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(AuthError::Missing);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("Authorization header is not ASCII"))?
        .trim();
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or(AuthError::Malformed("Authorization header has no scheme"))?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(AuthError::Malformed("empty bearer token"));
        }
        Ok(rest.to_string())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| AuthError::Malformed("Basic credentials are not base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| AuthError::Malformed("Basic credentials are not UTF-8"))?;
        let (_user, password) = decoded
            .split_once(':')
            .ok_or(AuthError::Malformed("Basic credentials have no password"))?;
        if password.is_empty() {
            return Err(AuthError::Malformed("Basic password (the token) is empty"));
        }
        Ok(password.to_string())
    } else {
        Err(AuthError::Malformed("unsupported Authorization scheme"))
    }
}

/// What a new token is for.
pub(crate) enum TokenScope<'a> {
    Project { id: i64, name: &'a str, role: Role },
    User { id: i64, name: &'a str },
}

struct Cached<T> {
    at: Instant,
    value: T,
}

/// Resolved roles keyed by (token id, project id).
type RoleCache = HashMap<(String, i64), Cached<Option<Role>>>;

pub(crate) struct Auth {
    db: Arc<dyn Index>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    tokens: Mutex<HashMap<String, Cached<Arc<TokenRow>>>>,
    roles: Mutex<RoleCache>,
    last_used: Mutex<HashMap<String, i64>>,
}

impl Auth {
    pub(crate) fn new(db: Arc<dyn Index>, secret: &[u8]) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is enforced from the index (tokens may have none); a present `exp` is still checked.
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.leeway = 0;
        Auth {
            db,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            tokens: Mutex::new(HashMap::new()),
            roles: Mutex::new(HashMap::new()),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets cached tokens and roles; called after every administrative change.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut t) = self.tokens.lock() {
            t.clear();
        }
        if let Ok(mut r) = self.roles.lock() {
            r.clear();
        }
    }

    /// Creates a token, stores its id and hash, and returns it (the only time it is visible).
    pub(crate) async fn issue(
        &self,
        scope: TokenScope<'_>,
        expires_in: Option<Duration>,
        description: &str,
        created_by: &str,
    ) -> Result<CreatedToken, AuthError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let iat = now();
        let exp = expires_in.map(|d| iat.saturating_add(d.as_secs().min(i64::MAX as u64) as i64));
        let (sub, project_id, user_id, role) = match scope {
            TokenScope::Project { id, name, role } => {
                (format!("project:{name}"), Some(id), None, Some(role))
            }
            TokenScope::User { id, name } => (format!("user:{name}"), None, Some(id), None),
        };
        let claims = TokenClaims {
            jti: id.clone(),
            sub,
            iat,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AuthError::Signing)?;
        let hash = sha256_hex(&token);
        self.db
            .insert_token(&NewToken {
                id: &id,
                token_sha256: &hash,
                project_id,
                user_id,
                role,
                description,
                created_by,
                created_at: iat,
                expires_at: exp,
            })
            .await?;
        let row = self
            .db
            .token(&id)
            .await?
            .ok_or_else(|| AuthError::Internal("token vanished after insert".into()))?;
        Ok(CreatedToken {
            token,
            info: row.info(),
        })
    }

    /// Verifies the request's token and returns who it belongs to.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = credential(headers)?;
        self.verify(&token).await
    }

    pub(crate) async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?;
        let jti = data.claims.jti;
        let row = self.token_row(&jti).await?;
        if row.token_sha256 != sha256_hex(token) {
            return Err(AuthError::Invalid);
        }
        let t = now();
        if row.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if row.expires_at.is_some_and(|e| e <= t) {
            return Err(AuthError::Expired);
        }
        let scope = match (
            &row.project_id,
            &row.project,
            row.role,
            &row.user_id,
            &row.user,
        ) {
            (Some(id), Some(name), Some(role), _, _) => Scope::Project {
                id: *id,
                name: name.clone(),
                role,
            },
            (None, _, _, Some(id), Some(name)) => Scope::User {
                id: *id,
                name: name.clone(),
                admin: row.user_is_admin,
            },
            _ => return Err(AuthError::Invalid),
        };
        if let Ok(mut used) = self.last_used.lock() {
            used.insert(jti.clone(), t);
        }
        Ok(Principal {
            token_id: jti,
            scope,
        })
    }

    async fn token_row(&self, jti: &str) -> Result<Arc<TokenRow>, AuthError> {
        if let Ok(cache) = self.tokens.lock() {
            if let Some(c) = cache.get(jti) {
                if c.at.elapsed() < CACHE_TTL {
                    return Ok(c.value.clone());
                }
            }
        }
        let row = Arc::new(self.db.token(jti).await?.ok_or(AuthError::Invalid)?);
        if let Ok(mut cache) = self.tokens.lock() {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(
                jti.to_string(),
                Cached {
                    at: Instant::now(),
                    value: row.clone(),
                },
            );
        }
        Ok(row)
    }

    /// The caller's role on a project, `None` when it has no access at all.
    pub(crate) async fn role_on(
        &self,
        p: &Principal,
        project_id: i64,
    ) -> Result<Option<Role>, AuthError> {
        match &p.scope {
            Scope::Project { id, role, .. } => Ok((*id == project_id).then_some(*role)),
            Scope::User { admin: true, .. } => Ok(Some(Role::Admin)),
            Scope::User { id, .. } => {
                let key = (p.token_id.clone(), project_id);
                if let Ok(cache) = self.roles.lock() {
                    if let Some(c) = cache.get(&key) {
                        if c.at.elapsed() < CACHE_TTL {
                            return Ok(c.value);
                        }
                    }
                }
                let role = self.db.user_role(*id, project_id).await?;
                if let Ok(mut cache) = self.roles.lock() {
                    if cache.len() > 100_000 {
                        cache.clear();
                    }
                    cache.insert(
                        key,
                        Cached {
                            at: Instant::now(),
                            value: role,
                        },
                    );
                }
                Ok(role)
            }
        }
    }

    /// Writes the "last used" times gathered since the previous call.
    pub(crate) async fn flush_last_used(&self) -> Result<(), IndexError> {
        let used: Vec<(String, i64)> = match self.last_used.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => Vec::new(),
        };
        self.db.touch_tokens(&used).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_credentials() {
        let mut h = HeaderMap::new();
        assert!(matches!(credential(&h), Err(AuthError::Missing)));
        h.insert(header::AUTHORIZATION, "Bearer abc.def.ghi".parse().unwrap());
        assert_eq!(credential(&h).unwrap(), "abc.def.ghi");
        let b = base64::engine::general_purpose::STANDARD.encode("user:tok.en.x");
        h.insert(header::AUTHORIZATION, format!("Basic {b}").parse().unwrap());
        assert_eq!(credential(&h).unwrap(), "tok.en.x");
        h.insert(header::AUTHORIZATION, "Digest x".parse().unwrap());
        assert!(matches!(credential(&h), Err(AuthError::Malformed(_))));
    }

    #[tokio::test]
    async fn signs_verifies_and_rejects_tampering() {
        let (db, dir) = crate::db::sqlite::testing::temp_index().await;
        db.create_project("p").await.unwrap();
        let pid = db.require_project("p").await.unwrap();
        let secret = load_or_create_secret(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_secret(dir.path()).unwrap(), secret);
        let auth = Auth::new(db.clone(), &secret);
        let created = auth
            .issue(
                TokenScope::Project {
                    id: pid,
                    name: "p",
                    role: Role::Write,
                },
                None,
                "",
                "test",
            )
            .await
            .unwrap();
        let p = auth.verify(&created.token).await.unwrap();
        assert_eq!(auth.role_on(&p, pid).await.unwrap(), Some(Role::Write));
        assert_eq!(auth.role_on(&p, pid + 1).await.unwrap(), None);

        let other = Auth::new(db.clone(), &[9u8; 32]);
        assert!(matches!(
            other.verify(&created.token).await,
            Err(AuthError::Invalid)
        ));
        let mut parts: Vec<&str> = created.token.split('.').collect();
        let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        parts[0] = &none_header;
        let forged = format!("{}.{}.", parts[0], parts[1]);
        assert!(auth.verify(&forged).await.is_err());

        db.revoke_token(&created.info.id).await.unwrap();
        auth.invalidate();
        assert!(matches!(
            auth.verify(&created.token).await,
            Err(AuthError::Revoked)
        ));
    }
}
