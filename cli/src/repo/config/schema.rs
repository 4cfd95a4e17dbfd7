//! Validation of the merged configuration against DVC's schema (`dvc/config_schema.py`), with
//! voluptuous's messages so errors read as DVC's do.

use super::configobj::Value;
use super::Section;

#[derive(Debug, Clone, Copy)]
enum Check {
    Str,
    Bool,
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Float {
        min: f64,
    },
    /// One of these, compared lowercased.
    Choice(&'static [&'static str]),
    CacheType,
    /// `true`/`false` or any other string (a CA bundle path for `ssl_verify`).
    BoolOrStr,
    /// A Python `bool` object, which a config file can never hold.
    PyBool,
}

use Check::*;

const INT1: Check = Int {
    min: Some(1),
    max: None,
};
const INT: Check = Int {
    min: None,
    max: None,
};
const FLOAT0: Check = Float { min: 0.0 };

const CORE: &[(&str, Check)] = &[
    ("remote", Str),
    ("checksum_jobs", INT1),
    ("interactive", Bool),
    ("analytics", Bool),
    ("hardlink_lock", Bool),
    ("no_scm", Bool),
    ("autostage", Bool),
    ("experiments", Bool),
    ("check_update", Bool),
    ("site_cache_dir", Str),
    ("machine", Str),
];

const LOCAL_COMMON: &[(&str, Check)] = &[
    ("type", CacheType),
    ("protected", Bool),
    ("shared", Choice(&["group"])),
    ("slow_link_warning", Bool),
    ("verify", Bool),
];

const CACHE: &[(&str, Check)] = &[
    ("local", Str),
    ("s3", Str),
    ("gs", Str),
    ("hdfs", Str),
    ("webhdfs", Str),
    ("ssh", Str),
    ("azure", Str),
    ("dir", Str),
];

const REMOTE_COMMON: &[(&str, Check)] = &[
    ("url", Str),
    ("checksum_jobs", INT1),
    ("jobs", INT1),
    ("worktree", Bool),
    ("no_traverse", Bool),
    ("version_aware", Bool),
];

const HTTP: &[(&str, Check)] = &[
    ("auth", Choice(&["basic", "digest", "custom"])),
    ("custom_auth_header", Str),
    ("user", Str),
    ("password", Str),
    ("ask_password", Bool),
    ("ssl_verify", BoolOrStr),
    ("method", Str),
    ("connect_timeout", FLOAT0),
    ("read_timeout", FLOAT0),
    ("verify", Bool),
];

const WEBDAV: &[(&str, Check)] = &[
    ("user", Str),
    ("password", Str),
    ("ask_password", Bool),
    ("token", Str),
    ("bearer_token_command", Str),
    ("custom_auth_header", Str),
    ("cert_path", Str),
    ("key_path", Str),
    ("timeout", INT),
    ("ssl_verify", BoolOrStr),
    ("verify", Bool),
];

const S3: &[(&str, Check)] = &[
    ("region", Str),
    ("profile", Str),
    ("credentialpath", Str),
    ("configpath", Str),
    ("endpointurl", Str),
    ("access_key_id", Str),
    ("secret_access_key", Str),
    ("session_token", Str),
    ("listobjects", Bool),
    ("use_ssl", Bool),
    ("allow_anonymous_login", Bool),
    ("ssl_verify", BoolOrStr),
    ("sse", Str),
    ("sse_kms_key_id", Str),
    ("sse_customer_algorithm", Str),
    ("sse_customer_key", Str),
    ("acl", Str),
    ("grant_read", Str),
    ("grant_read_acp", Str),
    ("grant_write_acp", Str),
    ("grant_full_control", Str),
    ("cache_regions", PyBool),
    ("read_timeout", INT),
    ("connect_timeout", INT),
    ("verify", Bool),
];

const GS: &[(&str, Check)] = &[
    ("projectname", Str),
    ("credentialpath", Str),
    ("endpointurl", Str),
    ("verify", Bool),
    ("allow_anonymous_login", Bool),
];

const SSH: &[(&str, Check)] = &[
    ("type", CacheType),
    ("port", INT),
    ("user", Str),
    ("password", Str),
    ("ask_password", Bool),
    ("passphrase", Str),
    ("ask_passphrase", Bool),
    ("keyfile", Str),
    ("timeout", INT),
    ("gss_auth", Bool),
    ("allow_agent", Bool),
    ("max_sessions", INT),
    ("verify", Bool),
];

const HDFS: &[(&str, Check)] = &[("user", Str), ("kerb_ticket", Str), ("replication", INT)];

const WEBHDFS: &[(&str, Check)] = &[
    ("kerberos", Bool),
    ("kerberos_principal", Str),
    ("proxy_to", Str),
    ("ssl_verify", BoolOrStr),
    ("token", Str),
    ("use_https", Bool),
    ("user", Str),
    ("password", Str),
    ("data_proxy_target", Str),
    ("verify", Bool),
];

const AZURE: &[(&str, Check)] = &[
    ("connection_string", Str),
    ("sas_token", Str),
    ("account_name", Str),
    ("account_key", Str),
    ("tenant_id", Str),
    ("client_id", Str),
    ("client_secret", Str),
    ("allow_anonymous_login", Bool),
    ("exclude_environment_credential", Bool),
    ("exclude_visual_studio_code_credential", Bool),
    ("exclude_shared_token_cache_credential", Bool),
    ("exclude_managed_identity_credential", Bool),
    ("verify", Bool),
    ("timeout", INT),
    ("read_timeout", INT),
    ("connection_timeout", INT),
];

const OSS: &[(&str, Check)] = &[
    ("oss_key_id", Str),
    ("oss_key_secret", Str),
    ("oss_endpoint", Str),
    ("verify", Bool),
];

const GDRIVE: &[(&str, Check)] = &[
    ("profile", Str),
    ("gdrive_use_service_account", Bool),
    ("gdrive_client_id", Str),
    ("gdrive_client_secret", Str),
    ("gdrive_user_credentials_file", Str),
    ("gdrive_service_account_user_email", Str),
    ("gdrive_service_account_json_file_path", Str),
    ("gdrive_trash_only", Bool),
    ("gdrive_acknowledge_abuse", Bool),
    ("verify", Bool),
];

const STATE: &[(&str, Check)] = &[
    ("dir", Str),
    ("row_limit", INT1),
    (
        "row_cleanup_quota",
        Int {
            min: Some(0),
            max: Some(100),
        },
    ),
];
const INDEX: &[(&str, Check)] = &[("dir", Str)];
const PLOTS: &[(&str, Check)] = &[
    ("html_template", Str),
    ("auto_open", Bool),
    ("out_dir", Str),
];
const EXP: &[(&str, Check)] = &[
    ("code", Str),
    ("data", Str),
    ("models", Str),
    ("metrics", Str),
    ("params", Str),
    ("plots", Str),
    ("live", Str),
    ("auto_push", Bool),
    ("git_remote", Str),
];
const PARSING: &[(&str, Check)] = &[
    ("bool", Choice(&["store_true", "boolean_optional"])),
    ("list", Choice(&["nargs", "append"])),
];
const HYDRA: &[(&str, Check)] = &[
    ("enabled", Bool),
    ("config_dir", Str),
    ("config_module", Str),
    ("config_name", Str),
    ("plugins_path", Str),
];
const STUDIO: &[(&str, Check)] = &[
    ("token", Str),
    ("url", Str),
    ("repo_url", Str),
    ("offline", Bool),
];
const MACHINE: &[(&str, Check)] = &[
    ("cloud", Choice(&["aws", "azure"])),
    (
        "region",
        Choice(&["us-west", "us-east", "eu-west", "eu-north"]),
    ),
    ("image", Str),
    ("spot", Bool),
    ("spot_price", Float { min: f64::MIN }),
    ("instance_hdd_size", INT),
    ("instance_type", Str),
    ("instance_gpu", Str),
    ("ssh_private", Str),
    ("startup_script", Str),
    ("setup_script", Str),
];
const DB: &[(&str, Check)] = &[("url", Str), ("username", Str), ("password", Str)];

/// The option tables that apply to a remote with this URL scheme (`""` is a local folder).
/// `None` means the scheme is not one DVC supports.
fn remote_tables(scheme: &str) -> Option<Vec<&'static [(&'static str, Check)]>> {
    let specific: &[&[(&str, Check)]] = match scheme {
        "" => &[LOCAL_COMMON],
        "s3" => &[S3],
        "gs" => &[GS],
        "ssh" => &[SSH],
        "hdfs" => &[HDFS],
        "webhdfs" => &[WEBHDFS],
        "azure" => &[AZURE],
        "oss" => &[OSS],
        "gdrive" => &[GDRIVE],
        "http" | "https" => &[HTTP],
        "webdav" | "webdavs" => &[WEBDAV],
        "remote" => &[],
        _ => return None,
    };
    let mut v = specific.to_vec();
    v.push(REMOTE_COMMON);
    Some(v)
}

/// The scheme of a remote URL as DVC's `ByUrl` sees it: empty for anything without a network
/// location (plain paths, `file:///x`).
pub fn url_scheme(url: &str) -> String {
    let Some(colon) = url.find(':') else {
        return String::new();
    };
    let scheme = &url[..colon];
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return String::new();
    }
    let rest = &url[colon + 1..];
    let Some(after) = rest.strip_prefix("//") else {
        return String::new();
    };
    let netloc_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    if netloc_end == 0 {
        return String::new();
    }
    scheme.to_ascii_lowercase()
}

fn at(path: &[&str]) -> String {
    let mut s = String::from("data");
    for p in path {
        s.push_str(&format!("['{p}']"));
    }
    s
}

fn check_value(check: Check, value: &Value) -> Result<(), String> {
    let text = match value {
        Value::Str(s) => s.as_str(),
        Value::List(items) => {
            if let CacheType = check {
                return cache_types(items.iter().map(String::as_str));
            }
            return Err(if let PyBool = check {
                "expected bool".into()
            } else {
                "expected str".into()
            });
        }
    };
    match check {
        Str => Ok(()),
        Bool => match text.to_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => Err("expected true or false".into()),
        },
        BoolOrStr => Ok(()),
        PyBool => Err("expected bool".into()),
        Int { min, max } => {
            let n: i64 = text
                .trim()
                .parse()
                .map_err(|_| "expected int".to_string())?;
            if let Some(m) = min {
                if n < m {
                    return Err(format!("value must be at least {m}"));
                }
            }
            if let Some(m) = max {
                if n > m {
                    return Err(format!("value must be at most {m}"));
                }
            }
            Ok(())
        }
        Float { min } => {
            let n: f64 = text
                .trim()
                .parse()
                .map_err(|_| "expected float".to_string())?;
            if n < min {
                return Err(format!("value must be at least {}", min as i64));
            }
            Ok(())
        }
        Choice(choices) => {
            if choices.contains(&text.to_lowercase().as_str()) {
                Ok(())
            } else {
                Err(format!("expected one of {}", choices.join(", ")))
            }
        }
        CacheType => cache_types(text.split(',').map(str::trim)),
    }
}

/// `cache.type`: every link type must be one DVC knows.
fn cache_types<'a>(types: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut bad: Vec<&str> = Vec::new();
    for t in types {
        if !["reflink", "hardlink", "symlink", "copy"].contains(&t) && !bad.contains(&t) {
            bad.push(t);
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("Unsupported cache type(s): {}", bad.join(", ")))
    }
}

fn check_table(
    tables: &[&[(&str, Check)]],
    table: &[(String, Value)],
    path: &[&str],
    allow_extra: bool,
) -> Result<(), String> {
    for (key, value) in table {
        let check = tables
            .iter()
            .flat_map(|t| t.iter())
            .find(|(k, _)| k == key)
            .map(|(_, c)| *c);
        let mut p = path.to_vec();
        p.push(key);
        match check {
            Some(c) => check_value(c, value)
                .map_err(|m| format!("{m} for dictionary value @ {}", at(&p)))?,
            None if allow_extra => {}
            None => return Err(format!("extra keys not allowed @ {}", at(&p))),
        }
    }
    Ok(())
}

/// Validates merged sections; the error text is voluptuous's, as DVC prints it.
pub fn validate(sections: &[(Section, Vec<(String, Value)>)]) -> Result<(), String> {
    for (section, table) in sections {
        match section {
            Section::Plain(name) => {
                let (tables, extra): (&[&[(&str, Check)]], bool) = match name.as_str() {
                    "core" => (&[CORE], false),
                    "cache" => (&[CACHE, LOCAL_COMMON], false),
                    "state" => (&[STATE], false),
                    "index" => (&[INDEX], false),
                    "feature" => (&[&[("machine", Bool)]], true),
                    "plots" => (&[PLOTS], false),
                    "exp" => (&[EXP], false),
                    "parsing" => (&[PARSING], false),
                    "hydra" => (&[HYDRA], false),
                    "studio" => (&[STUDIO], false),
                    _ => return Err(format!("extra keys not allowed @ {}", at(&[name]))),
                };
                check_table(tables, table, &[name], extra)?;
            }
            Section::Named { kind, name } => match kind.as_str() {
                "remote" => {
                    let path = ["remote", name.as_str()];
                    let url = table.iter().find(|(k, _)| k == "url").map(|(_, v)| v);
                    let url = match url {
                        Some(Value::Str(u)) => u,
                        Some(Value::List(_)) => {
                            return Err(format!(
                                "expected str for dictionary value @ {}",
                                at(&["remote", name, "url"])
                            ))
                        }
                        None => {
                            return Err(format!(
                                "expected 'url' for dictionary value @ {}",
                                at(&path)
                            ))
                        }
                    };
                    let scheme = url_scheme(url);
                    let Some(tables) = remote_tables(&scheme) else {
                        return Err(format!(
                            "Unsupported URL type {scheme}:// for dictionary value @ {}",
                            at(&path)
                        ));
                    };
                    check_table(&tables, table, &path, scheme == "remote")?;
                }
                "machine" => check_table(&[MACHINE], table, &["machine", name], false)?,
                _ => check_table(&[DB], table, &["db", name], false)?,
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(name: &str, kv: &[(&str, &str)]) -> (Section, Vec<(String, Value)>) {
        (
            Section::Plain(name.into()),
            kv.iter()
                .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
                .collect(),
        )
    }
    fn remote(name: &str, kv: &[(&str, &str)]) -> (Section, Vec<(String, Value)>) {
        (
            Section::Named {
                kind: "remote".into(),
                name: name.into(),
            },
            kv.iter()
                .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
                .collect(),
        )
    }

    #[test]
    fn messages_match_dvc() {
        let cases = [
            (
                vec![plain("core", &[("autostage", "maybe")])],
                "expected true or false for dictionary value @ data['core']['autostage']",
            ),
            (
                vec![plain("cache", &[("type", "foo,copy")])],
                "Unsupported cache type(s): foo for dictionary value @ data['cache']['type']",
            ),
            (
                vec![plain("cache", &[("shared", "all")])],
                "expected one of group for dictionary value @ data['cache']['shared']",
            ),
            (
                vec![plain("core", &[("checksum_jobs", "x")])],
                "expected int for dictionary value @ data['core']['checksum_jobs']",
            ),
            (
                vec![plain("core", &[("checksum_jobs", "0")])],
                "value must be at least 1 for dictionary value @ data['core']['checksum_jobs']",
            ),
            (
                vec![plain("foo", &[("bar", "1")])],
                "extra keys not allowed @ data['foo']",
            ),
            (
                vec![remote("a", &[("auth", "basic")])],
                "expected 'url' for dictionary value @ data['remote']['a']",
            ),
            (
                vec![remote("a", &[("url", "ftp://x/y")])],
                "Unsupported URL type ftp:// for dictionary value @ data['remote']['a']",
            ),
            (
                vec![remote("a", &[("url", "http://x/y"), ("bad", "1")])],
                "extra keys not allowed @ data['remote']['a']['bad']",
            ),
            (
                vec![remote("a", &[("url", "http://x/y"), ("read_timeout", "-1")])],
                "value must be at least 0 for dictionary value @ data['remote']['a']['read_timeout']",
            ),
        ];
        for (sections, msg) in cases {
            assert_eq!(validate(&sections).unwrap_err(), msg);
        }
    }

    #[test]
    fn accepts_valid() {
        let ok = vec![
            plain("core", &[("remote", "s"), ("autostage", "True")]),
            plain("cache", &[("type", "reflink,copy"), ("shared", "Group")]),
            remote(
                "s",
                &[
                    ("url", "http://h/x"),
                    ("auth", "basic"),
                    ("ssl_verify", "/ca"),
                ],
            ),
            remote("l", &[("url", "../store"), ("type", "hardlink")]),
            remote("f", &[("url", "file:///x/y")]),
        ];
        assert_eq!(validate(&ok), Ok(()));
    }

    #[test]
    fn schemes() {
        assert_eq!(url_scheme("/abs/path"), "");
        assert_eq!(url_scheme("../rel"), "");
        assert_eq!(url_scheme("file:///x"), "");
        assert_eq!(url_scheme("S3://bucket/x"), "s3");
        assert_eq!(url_scheme("http://h:1/x"), "http");
    }
}
