//! HTTP remote options as DVC keeps them (docs/dvc-formats.md §5, §7): `auth`, `user`, `password`,
//! `custom_auth_header`, `method`, `ssl_verify`, timeouts; or `LODE_TOKEN` in the environment.
//!
//! Credentials only ever become a request header; they are never formatted into a message.

use std::time::Duration;

use base64::Engine;

use super::RemoteError;
use crate::repo::config::RemoteConfig;

/// TLS certificate checking.
#[derive(Debug, Clone)]
pub enum SslVerify {
    On,
    Off,
    /// A CA bundle file.
    Bundle(String),
}

#[derive(Clone)]
pub struct HttpSettings {
    /// Header name and value sent with every request.
    pub auth: Option<(String, String)>,
    /// Upload with PUT instead of POST.
    pub put: bool,
    pub ssl: SslVerify,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("auth", &self.auth.as_ref().map(|(h, _)| (h, "<redacted>")))
            .field("put", &self.put)
            .finish_non_exhaustive()
    }
}

fn seconds(conf: &RemoteConfig, key: &str) -> Result<Duration, RemoteError> {
    match conf.get(key) {
        None => Ok(Duration::from_secs(60)),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                RemoteError::Config(format!(
                    "config file error: remote '{}': {key} '{v}' is not a number of seconds",
                    conf.name
                ))
            }),
    }
}

impl HttpSettings {
    pub fn from_config(conf: &RemoteConfig) -> Result<HttpSettings, RemoteError> {
        let auth = match std::env::var("LODE_TOKEN").ok().filter(|t| !t.is_empty()) {
            Some(token) => Some(("Authorization".to_string(), format!("Bearer {token}"))),
            None => config_auth(conf)?,
        };
        let put = match conf.get("method") {
            None => false,
            Some(m) if m.eq_ignore_ascii_case("put") => true,
            Some(m) if m.eq_ignore_ascii_case("post") => false,
            Some(m) => {
                return Err(RemoteError::Config(format!(
                    "config file error: remote '{}': method '{m}' is not POST or PUT",
                    conf.name
                )))
            }
        };
        let ssl = match conf.get("ssl_verify") {
            None => SslVerify::On,
            Some(v) if v.eq_ignore_ascii_case("true") => SslVerify::On,
            Some(v) if v.eq_ignore_ascii_case("false") => SslVerify::Off,
            Some(path) => SslVerify::Bundle(path.to_string()),
        };
        Ok(HttpSettings {
            auth,
            put,
            ssl,
            connect_timeout: seconds(conf, "connect_timeout")?,
            read_timeout: seconds(conf, "read_timeout")?,
        })
    }
}

fn config_auth(conf: &RemoteConfig) -> Result<Option<(String, String)>, RemoteError> {
    let Some(auth) = conf.get("auth") else {
        return Ok(None);
    };
    let password = conf.get("password").filter(|p| !p.is_empty());
    if conf
        .get("ask_password")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        && password.is_none()
    {
        return Err(RemoteError::Config(format!(
            "remote '{}' asks for a password, which lode does not prompt for; store it with \
             `lode remote modify --local {} password ...` or set LODE_TOKEN",
            conf.name, conf.name
        )));
    }
    match auth.to_ascii_lowercase().as_str() {
        "basic" => {
            let (Some(user), Some(password)) = (conf.get("user"), password) else {
                return Err(RemoteError::Config(
                    "HTTP 'basic' authentication require both 'user' and 'password'".into(),
                ));
            };
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Ok(Some(("Authorization".into(), format!("Basic {encoded}"))))
        }
        "custom" => {
            let (Some(header), Some(password)) = (conf.get("custom_auth_header"), password) else {
                return Err(RemoteError::Config(
                    "HTTP 'custom' authentication require both 'custom_auth_header' and 'password'"
                        .into(),
                ));
            };
            Ok(Some((header.to_string(), password.to_string())))
        }
        "digest" => Err(RemoteError::Unsupported(
            "unexpected error - Auth method 'digest' is not supported.".into(),
        )),
        other => Err(RemoteError::Config(format!(
            "config file error: remote '{}': unknown auth method '{other}'",
            conf.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(opts: &[(&str, &str)]) -> RemoteConfig {
        RemoteConfig {
            name: "r".into(),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn auth_headers() {
        let basic = config_auth(&conf(&[
            ("auth", "basic"),
            ("user", "u"),
            ("password", "p"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(basic, ("Authorization".into(), "Basic dTpw".into()));
        let custom = config_auth(&conf(&[
            ("auth", "custom"),
            ("custom_auth_header", "X-Api-Key"),
            ("password", "tok"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(custom, ("X-Api-Key".into(), "tok".into()));
        assert!(matches!(
            config_auth(&conf(&[("auth", "basic"), ("user", "u")])),
            Err(RemoteError::Config(_))
        ));
        assert!(matches!(
            config_auth(&conf(&[("auth", "digest")])),
            Err(RemoteError::Unsupported(_))
        ));
        assert!(config_auth(&conf(&[])).unwrap().is_none());
    }

    #[test]
    fn debug_hides_secrets() {
        let s = HttpSettings {
            auth: Some(("Authorization".into(), "Bearer secret".into())),
            put: false,
            ssl: SslVerify::On,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        };
        assert!(!format!("{s:?}").contains("secret"));
    }
}
