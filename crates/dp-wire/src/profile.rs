//! The environment and the shared `config` / `credentials` files, read the way the AWS SDKs read them.
//!
//! This exists so that settings the CLI needs at once (`output`, `region`, `endpoint_url`, static keys) cost one
//! small file read and no async machinery. It parses; it resolves nothing and never contacts a credential source.
//! Values read here may be secrets (`aws_secret_access_key`): nothing in this module prints them.

use std::collections::HashMap;
use std::path::PathBuf;

/// The process environment as dp-wire sees it: a snapshot of variables, replaceable in tests and by embedders.
#[derive(Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl Environment {
    /// A snapshot of the current process environment.
    pub fn from_process() -> Environment {
        Environment {
            vars: std::env::vars().collect(),
        }
    }

    /// An environment made of exactly these variables.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Environment {
        Environment {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, if set and not empty (the SDKs treat an empty variable as unset).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn home(&self) -> Option<PathBuf> {
        self.get("HOME")
            .or_else(|| self.get("USERPROFILE"))
            .map(PathBuf::from)
    }

    fn expand(&self, path: &str) -> PathBuf {
        match (
            path.strip_prefix("~/").or_else(|| path.strip_prefix("~\\")),
            self.home(),
        ) {
            (Some(rest), Some(home)) => home.join(rest),
            _ if path == "~" => self.home().unwrap_or_else(|| PathBuf::from(path)),
            _ => PathBuf::from(path),
        }
    }

    /// Path of the shared config file (`AWS_CONFIG_FILE`, default `~/.aws/config`).
    pub fn config_file(&self) -> PathBuf {
        self.expand(self.get("AWS_CONFIG_FILE").unwrap_or("~/.aws/config"))
    }

    /// Path of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`).
    pub fn credentials_file(&self) -> PathBuf {
        self.expand(
            self.get("AWS_SHARED_CREDENTIALS_FILE")
                .unwrap_or("~/.aws/credentials"),
        )
    }
}

impl std::fmt::Debug for Environment {
    // Only names: values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self
            .vars
            .keys()
            .map(String::as_str)
            .filter(|k| k.starts_with("AWS_"))
            .collect();
        names.sort_unstable();
        f.debug_struct("Environment")
            .field("aws_variables", &names)
            .finish()
    }
}

/// One section of a profile file: properties, some of which have sub-properties (`services` sections).
#[derive(Clone, Default)]
pub(crate) struct Section {
    properties: HashMap<String, String>,
    sub_properties: HashMap<String, HashMap<String, String>>,
}

impl Section {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    pub(crate) fn sub(&self, key: &str, sub_key: &str) -> Option<&str> {
        self.sub_properties
            .get(key)
            .and_then(|m| m.get(sub_key))
            .map(String::as_str)
    }

    pub(crate) fn has_any(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.properties.contains_key(*k))
    }
}

/// Which file a text came from: it decides how section headers are read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Config,
    Credentials,
}

/// The profiles and `services` sections of both files, merged.
#[derive(Clone, Default)]
pub(crate) struct ProfileSet {
    profiles: HashMap<String, Section>,
    services: HashMap<String, Section>,
}

impl ProfileSet {
    /// Reads both files of `env`; a missing or unreadable file counts as empty, as in the SDKs.
    pub(crate) fn load(env: &Environment) -> ProfileSet {
        let config = std::fs::read_to_string(env.config_file()).unwrap_or_default();
        let credentials = std::fs::read_to_string(env.credentials_file()).unwrap_or_default();
        ProfileSet::parse(&config, &credentials)
    }

    /// Parses the texts of the two files. The credentials file wins for a key set in both.
    pub(crate) fn parse(config: &str, credentials: &str) -> ProfileSet {
        let mut set = ProfileSet::default();
        set.merge(config, FileKind::Config);
        set.merge(credentials, FileKind::Credentials);
        set
    }

    pub(crate) fn profile(&self, name: &str) -> Option<&Section> {
        self.profiles.get(name)
    }

    pub(crate) fn services(&self, name: &str) -> Option<&Section> {
        self.services.get(name)
    }

    fn merge(&mut self, text: &str, kind: FileKind) {
        let mut sections: Vec<(Target, String, Section)> = Vec::new();
        let mut last_key: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim_end_matches('\r');
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if trimmed.starts_with('[') {
                last_key = None;
                let header = strip_comment(trimmed);
                let target = header
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .and_then(|inner| classify_header(inner.trim(), kind));
                // Properties of an ignored section (`[sso-session x]`, junk) go to a section that is dropped.
                let (t, n) = target.unwrap_or((Target::Ignored, String::new()));
                sections.push((t, n, Section::default()));
                continue;
            }
            let Some((_, _, section)) = sections.last_mut() else {
                continue;
            };
            let continuation = line.starts_with(' ') || line.starts_with('\t');
            if continuation {
                let Some(key) = &last_key else { continue };
                let value_is_empty = section.properties.get(key).is_some_and(|v| v.is_empty());
                let has_subs = section.sub_properties.contains_key(key);
                match trimmed.split_once('=') {
                    Some((k, v)) if value_is_empty || has_subs => {
                        section
                            .sub_properties
                            .entry(key.clone())
                            .or_default()
                            .insert(k.trim().to_string(), strip_comment(v.trim()).to_string());
                    }
                    _ => {
                        if let Some(v) = section.properties.get_mut(key) {
                            v.push('\n');
                            v.push_str(trimmed);
                        }
                    }
                }
                continue;
            }
            if let Some((k, v)) = trimmed.split_once('=') {
                let key = k.trim().to_string();
                if key.is_empty() {
                    continue;
                }
                section
                    .properties
                    .insert(key.clone(), strip_comment(v.trim()).to_string());
                section.sub_properties.remove(&key);
                last_key = Some(key);
            }
        }

        // `[profile default]` beats `[default]` in the config file, whatever their order.
        let mut plain_default: Option<Section> = None;
        let mut explicit_default: Option<Section> = None;
        for (target, name, section) in sections {
            match target {
                Target::Profile { explicit_prefix }
                    if name == "default" && kind == FileKind::Config =>
                {
                    let slot = if explicit_prefix {
                        &mut explicit_default
                    } else {
                        &mut plain_default
                    };
                    merge_into(slot.get_or_insert_with(Section::default), section);
                }
                Target::Profile { .. } => {
                    merge_into(self.profiles.entry(name).or_default(), section)
                }
                Target::Services => merge_into(self.services.entry(name).or_default(), section),
                Target::Ignored => {}
            }
        }
        let default = match (plain_default, explicit_default) {
            (Some(mut plain), Some(explicit)) => {
                merge_into(&mut plain, explicit);
                Some(plain)
            }
            (plain, explicit) => explicit.or(plain),
        };
        if let Some(default) = default {
            merge_into(
                self.profiles.entry("default".to_string()).or_default(),
                default,
            );
        }
    }
}

#[derive(Clone, Copy)]
enum Target {
    Profile { explicit_prefix: bool },
    Services,
    Ignored,
}

fn classify_header(inner: &str, kind: FileKind) -> Option<(Target, String)> {
    match kind {
        FileKind::Credentials => Some((
            Target::Profile {
                explicit_prefix: false,
            },
            inner.to_string(),
        )),
        FileKind::Config => {
            if inner == "default" {
                return Some((
                    Target::Profile {
                        explicit_prefix: false,
                    },
                    "default".to_string(),
                ));
            }
            let mut words = inner.splitn(2, [' ', '\t']);
            let prefix = words.next()?;
            let name = words.next().map(str::trim).filter(|n| !n.is_empty())?;
            match prefix {
                "profile" => Some((
                    Target::Profile {
                        explicit_prefix: true,
                    },
                    name.to_string(),
                )),
                "services" => Some((Target::Services, name.to_string())),
                _ => None,
            }
        }
    }
}

fn merge_into(into: &mut Section, from: Section) {
    into.properties.extend(from.properties);
    for (k, subs) in from.sub_properties {
        into.sub_properties.insert(k, subs);
    }
}

/// Drops a trailing ` # comment` or ` ; comment` (only after whitespace, so `a#b` stays).
fn strip_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'#' || bytes[i] == b';') && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t')
        {
            return value[..i].trim_end();
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles_services_and_precedence() {
        let config = "[default]\nregion = us-west-2\n[profile default]\noutput = text\n\
                      [profile dev] # comment\nregion=eu-west-1 ; note\nservices = svc\ns3 =\n  max_concurrent_requests = 2\n\
                      [services svc]\ndata_pipeline =\n  endpoint_url = http://127.0.0.1:9\n[sso-session x]\nsso_region = a\n";
        let credentials = "[dev]\naws_access_key_id = AKIDEXAMPLE\n[profile x]\nregion = odd\n";
        let set = ProfileSet::parse(config, credentials);
        let default = set.profile("default").unwrap();
        assert_eq!(
            default.get("output"),
            Some("text"),
            "[profile default] is read"
        );
        assert_eq!(
            default.get("region"),
            Some("us-west-2"),
            "[default] keys not overridden stay"
        );
        let dev = set.profile("dev").unwrap();
        assert_eq!(
            dev.get("region"),
            Some("eu-west-1"),
            "inline comment stripped"
        );
        assert_eq!(
            dev.get("aws_access_key_id"),
            Some("AKIDEXAMPLE"),
            "credentials file merged"
        );
        assert_eq!(dev.sub("s3", "max_concurrent_requests"), Some("2"));
        assert_eq!(
            set.services("svc")
                .unwrap()
                .sub("data_pipeline", "endpoint_url"),
            Some("http://127.0.0.1:9")
        );
        assert!(set.profile("x").is_none(), "sso-session is not a profile");
        assert_eq!(
            set.profile("profile x").unwrap().get("region"),
            Some("odd"),
            "credentials file takes names as is"
        );
    }
}
