//! The HTTP proxy of a request, from the environment as botocore (urllib3) reads it: used by dp-wire's own
//! requests and by the SDK clients it lends its HTTP client to.

use crate::error::Error;
use crate::profile::Environment;
use crate::transport::{Proxy, Target};

/// The proxy for `target` from `HTTPS_PROXY` / `HTTP_PROXY` (or their lower-case forms), unless `NO_PROXY` covers
/// the host, as botocore (urllib3) reads them. Only `http://` proxy URLs are supported.
pub(crate) fn proxy_for(env: &Environment, target: &Target) -> Result<Option<Proxy>, Error> {
    let url = if target.tls {
        env.get("HTTPS_PROXY").or_else(|| env.get("https_proxy"))
    } else {
        env.get("HTTP_PROXY").or_else(|| env.get("http_proxy"))
    };
    let Some(url) = url else { return Ok(None) };
    let no_proxy = env
        .get("NO_PROXY")
        .or_else(|| env.get("no_proxy"))
        .unwrap_or("");
    let host = target
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let bypass = no_proxy
        .split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .any(|entry| {
            let entry = entry
                .split(':')
                .next()
                .unwrap_or("")
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .to_string();
            entry == "*" || host == entry || host.ends_with(&format!(".{entry}"))
        });
    if bypass {
        return Ok(None);
    }
    let with_scheme = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let invalid = || Error::config(format!("Invalid proxy URL: {}", redact_userinfo(url)));
    let uri: http::Uri = with_scheme.parse().map_err(|_| invalid())?;
    if uri.scheme_str() != Some("http") {
        return Err(Error::config(format!(
            "Unsupported proxy URL {} (dp supports http:// proxies)",
            redact_userinfo(url)
        )));
    }
    let authority = uri.authority().ok_or_else(invalid)?;
    let authorization = authority.as_str().rsplit_once('@').map(|(userinfo, _)| {
        use base64::Engine as _;
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let credentials = format!(
            "{}:{}",
            crate::percent::decode(user),
            crate::percent::decode(password)
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    });
    Ok(Some(Proxy {
        host: authority.host().to_string(),
        port: authority.port_u16().unwrap_or(80),
        authorization,
    }))
}

/// A proxy URL for messages: any user info replaced.
fn redact_userinfo(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        (None, Some(at)) => format!("***@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}
