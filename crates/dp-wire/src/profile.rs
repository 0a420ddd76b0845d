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
        // `vars_os`: a variable that is not UTF-8 is skipped instead of panicking.
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Environment {
            vars: vars.collect(),
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

    /// Every variable (empty ones too), in no particular order; for embedders that derive an environment.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
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

/// One section of a profile file. Keys are lower-cased; a value that starts with a newline holds sub-properties.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    properties: HashMap<String, String>,
}

impl Section {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// The sub-property `sub_key` of `key` (`data_pipeline =\n  endpoint_url = …`).
    pub(crate) fn sub(&self, key: &str, sub_key: &str) -> Option<&str> {
        let value = self.properties.get(key)?;
        value
            .lines()
            .filter_map(|line| line.split_once('='))
            .find_map(|(k, v)| (k.trim() == sub_key).then(|| v.trim()))
    }

    pub(crate) fn has_any(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.properties.contains_key(*k))
    }

    #[cfg(test)]
    pub(crate) fn properties(&self) -> &HashMap<String, String> {
        &self.properties
    }
}

/// Which file a text came from: it decides how section headers are read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FileKind {
    Config,
    Credentials,
}

/// A syntax error in a profile file, with the AWS SDKs' wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) line: usize,
    pub(crate) message: &'static str,
}

/// The profiles, `services` and `sso-session` sections of both files, merged.
#[derive(Clone, Default, Debug)]
pub(crate) struct ProfileSet {
    profiles: HashMap<String, Section>,
    services: HashMap<String, Section>,
    sso_sessions: HashMap<String, Section>,
    /// A syntax error of either file, reported on the first call (the files are then ignored).
    error: Option<String>,
}

impl ProfileSet {
    /// Reads both files of `env`; a missing or unreadable file counts as empty, as in the SDKs.
    pub(crate) fn load(env: &Environment) -> ProfileSet {
        let config_path = env.config_file();
        let credentials_path = env.credentials_file();
        let config = std::fs::read_to_string(&config_path).unwrap_or_default();
        let credentials = std::fs::read_to_string(&credentials_path).unwrap_or_default();
        match ProfileSet::parse(&config, &credentials) {
            Ok(set) => set,
            Err((kind, e)) => {
                let path = if kind == FileKind::Config {
                    config_path
                } else {
                    credentials_path
                };
                ProfileSet {
                    error: Some(format!(
                        "Unable to parse config file: {} (line {}: {})",
                        path.display(),
                        e.line,
                        e.message
                    )),
                    ..ProfileSet::default()
                }
            }
        }
    }

    /// Parses the texts of the two files. The credentials file wins for a key set in both.
    pub(crate) fn parse(
        config: &str,
        credentials: &str,
    ) -> Result<ProfileSet, (FileKind, ParseError)> {
        let mut set = ProfileSet::default();
        set.merge(config, FileKind::Config)
            .map_err(|e| (FileKind::Config, e))?;
        set.merge(credentials, FileKind::Credentials)
            .map_err(|e| (FileKind::Credentials, e))?;
        Ok(set)
    }

    pub(crate) fn profile(&self, name: &str) -> Option<&Section> {
        self.profiles.get(name)
    }

    pub(crate) fn services(&self, name: &str) -> Option<&Section> {
        self.services.get(name)
    }

    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    #[cfg(test)]
    pub(crate) fn profiles(&self) -> &HashMap<String, Section> {
        &self.profiles
    }

    #[cfg(test)]
    pub(crate) fn sso_sessions(&self) -> &HashMap<String, Section> {
        &self.sso_sessions
    }

    fn merge(&mut self, text: &str, kind: FileKind) -> Result<(), ParseError> {
        let mut sections: Vec<(Target, String, Section)> = Vec::new();
        // The property a continuation line extends; reset by every section header.
        let mut last_key: Option<String> = None;
        let mut in_section = false;
        for (index, raw) in text.lines().enumerate() {
            let error = |message| ParseError {
                line: index + 1,
                message,
            };
            let line = raw.trim_end_matches('\r');
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                let header = strip_header_comment(trimmed);
                let inner = header.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
                let Some(inner) = inner else {
                    return Err(error("Profile definition must end with ']'"));
                };
                in_section = true;
                last_key = None;
                let (target, name) =
                    classify_header(inner.trim(), kind).unwrap_or((Target::Ignored, String::new()));
                sections.push((target, name, Section::default()));
                continue;
            }
            if !in_section {
                return Err(error("Expected a profile definition"));
            }
            let Some((target, _, section)) = sections.last_mut() else {
                return Err(error("Expected a profile definition"));
            };
            if line.starts_with(' ') || line.starts_with('\t') {
                let Some(key) = &last_key else {
                    return Err(error("Expected a property definition, found continuation"));
                };
                let Some(value) = section.properties.get_mut(key) else {
                    continue;
                };
                if value.is_empty() || value.starts_with('\n') {
                    // A sub-property.
                    match trimmed.split_once('=') {
                        None => return Err(error("Expected an '=' sign defining a sub-property")),
                        Some((k, _)) if k.trim().is_empty() => {
                            return Err(error("Sub-property did not have a name"));
                        }
                        Some(_) => {}
                    }
                }
                value.push('\n');
                value.push_str(trimmed);
                continue;
            }
            let Some((k, v)) = trimmed.split_once('=') else {
                return Err(error("Expected an '=' sign defining a property"));
            };
            let key = k.trim();
            if key.is_empty() {
                return Err(error("Property did not have a name"));
            }
            if *target == Target::Ignored || !is_identifier(key) {
                last_key = None;
                continue;
            }
            let key = key.to_ascii_lowercase();
            section
                .properties
                .insert(key.clone(), strip_value_comment(v.trim()).to_string());
            last_key = Some(key);
        }

        // `[profile default]` replaces `[default]` in the config file, whatever their order.
        let has_prefixed_default = sections.iter().any(|(t, n, _)| {
            matches!(
                t,
                Target::Profile {
                    explicit_prefix: true
                }
            ) && n == "default"
        });
        for (target, name, section) in sections {
            match target {
                Target::Profile {
                    explicit_prefix: false,
                } if kind == FileKind::Config && name == "default" && has_prefixed_default => {}
                Target::Profile { .. } => {
                    merge_into(self.profiles.entry(name).or_default(), section)
                }
                Target::Services => merge_into(self.services.entry(name).or_default(), section),
                Target::SsoSession => {
                    merge_into(self.sso_sessions.entry(name).or_default(), section)
                }
                Target::Ignored => {}
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Profile { explicit_prefix: bool },
    Services,
    SsoSession,
    Ignored,
}

/// Characters of profile, section and property names (aws-runtime's identifier rule).
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/.%@_:+".contains(c))
}

fn classify_header(inner: &str, kind: FileKind) -> Option<(Target, String)> {
    let named = |target, name: &str| is_identifier(name).then(|| (target, name.to_string()));
    match kind {
        FileKind::Credentials => named(
            Target::Profile {
                explicit_prefix: false,
            },
            inner,
        ),
        FileKind::Config => {
            if inner == "default" {
                return named(
                    Target::Profile {
                        explicit_prefix: false,
                    },
                    inner,
                );
            }
            let (prefix, name) = inner.split_once([' ', '\t'])?;
            let name = name.trim();
            match prefix {
                "profile" => named(
                    Target::Profile {
                        explicit_prefix: true,
                    },
                    name,
                ),
                "services" => named(Target::Services, name),
                "sso-session" => named(Target::SsoSession, name),
                _ => None,
            }
        }
    }
}

fn merge_into(into: &mut Section, from: Section) {
    into.properties.extend(from.properties);
}

/// A section header with a trailing comment removed (`[profile a] # note`, `[profile a]; note`).
fn strip_header_comment(line: &str) -> &str {
    match line.find(']') {
        Some(end)
            if line[end + 1..].trim_start().starts_with(['#', ';'])
                || line[end + 1..].trim().is_empty() =>
        {
            &line[..=end]
        }
        _ => line,
    }
}

/// Drops a trailing ` # comment` or ` ; comment` (only after whitespace, so `a#b` stays).
fn strip_value_comment(value: &str) -> &str {
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
pub(crate) mod tests {
    use super::*;

    #[test]
    fn services_sections_and_sub_properties() {
        let config = "[default]\nregion = us-west-2\n[profile dev] # comment\nregion=eu-west-1 ; note\nservices = svc\n\
                      [services svc]\ndata_pipeline =\n  endpoint_url = http://127.0.0.1:9\n";
        let credentials = "[dev]\naws_access_key_id = AKIDEXAMPLE\n";
        let set = ProfileSet::parse(config, credentials).unwrap();
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
        assert_eq!(
            set.services("svc")
                .unwrap()
                .sub("data_pipeline", "endpoint_url"),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            set.profile("default").unwrap().get("region"),
            Some("us-west-2")
        );
    }

    /// The 65 profile-parser cases of the aws-runtime crate package (`test-data/profile-parser-tests.json`,
    /// Apache-2.0), read from the cargo registry.
    #[test]
    fn aws_runtime_profile_parser_vectors() {
        let path = registry_file("aws-runtime-1.", "test-data/profile-parser-tests.json");
        let suite: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let tests = suite["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 65);
        let mut errors = 0;
        for case in tests {
            let name = case["name"].as_str().unwrap();
            let config = case["input"]["configFile"].as_str().unwrap_or("");
            let credentials = case["input"]["credentialsFile"].as_str().unwrap_or("");
            let result = ProfileSet::parse(config, credentials);
            if let Some(expected) = case["output"]["errorContaining"].as_str() {
                let (_, error) = result.expect_err(name);
                assert!(
                    error.message.contains(expected) || expected.contains(error.message),
                    "{name}: {error:?}"
                );
                errors += 1;
                continue;
            }
            let set = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let expected = case["output"]["config"]["profiles"].as_object().unwrap();
            let got = set.profiles();
            assert_eq!(got.len(), expected.len(), "{name}: profiles {got:?}");
            for (profile, properties) in expected {
                let section = got
                    .get(profile)
                    .unwrap_or_else(|| panic!("{name}: no profile {profile}"));
                let expected: HashMap<String, String> = properties
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                assert_eq!(section.properties(), &expected, "{name}: profile {profile}");
            }
            if let Some(sessions) = case["output"]["config"]["sso_sessions"].as_object() {
                assert_eq!(
                    set.sso_sessions().len(),
                    sessions.len(),
                    "{name}: sso sessions"
                );
            }
        }
        assert_eq!(errors, 10, "the error cases");
    }

    /// The file-location cases of aws-runtime's `test-data/file-location-tests.json` (Apache-2.0) for Linux; the
    /// five Windows cases (`USERPROFILE`, `HOMEDRIVE`, backslashes) do not apply to the platforms dp ships for.
    #[test]
    fn aws_runtime_file_location_vectors() {
        let path = registry_file("aws-runtime-1.", "test-data/file-location-tests.json");
        let suite: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut checked = 0;
        for case in suite["tests"].as_array().unwrap() {
            if case["platform"] != "linux" {
                continue;
            }
            let name = case["name"].as_str().unwrap();
            let vars = case["environment"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()));
            let env = Environment::from_vars(vars);
            assert_eq!(
                env.config_file().to_str(),
                case["configLocation"].as_str(),
                "{name}"
            );
            assert_eq!(
                env.credentials_file().to_str(),
                case["credentialsLocation"].as_str(),
                "{name}"
            );
            checked += 1;
        }
        assert_eq!(checked, 4);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 5_000, ..Default::default() })]

        /// Any text parses or fails with a line number inside the text; nothing panics.
        #[test]
        fn the_parser_never_panics(config in "[\\[\\] =#;a-z\\t\\r\\n-]{0,120}", credentials in "(?s).{0,60}") {
            match ProfileSet::parse(&config, &credentials) {
                Ok(set) => {
                    for section in set.profiles().values() {
                        for key in section.properties().keys() {
                            proptest::prop_assert_eq!(key.clone(), key.to_ascii_lowercase());
                        }
                    }
                }
                Err((kind, error)) => {
                    let text = if kind == FileKind::Config { &config } else { &credentials };
                    proptest::prop_assert!(error.line >= 1 && error.line <= text.lines().count());
                }
            }
        }
    }

    /// A file of a crate package in the cargo registry (the newest version matching `prefix`).
    pub(crate) fn registry_file(prefix: &str, file: &str) -> std::path::PathBuf {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo")
            });
        let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
            .unwrap()
            .flatten()
            .flat_map(|index| {
                std::fs::read_dir(index.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
            })
            .filter(|p| {
                p.file_name().unwrap().to_string_lossy().starts_with(prefix)
                    && p.join(file).is_file()
            })
            .collect();
        found.sort();
        found
            .pop()
            .map(|dir| dir.join(file))
            .unwrap_or_else(|| panic!("{prefix}*/{file} not in the cargo registry"))
    }
}
