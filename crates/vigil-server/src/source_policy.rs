//! Which stream sources an API client may open: the one check every stream
//! added, changed or restored through the API goes through
//! ([`check_stream_source`]).
//!
//! Without it `POST /v1/streams` was a server-side request forgery and
//! local-file read: FFmpeg opened any path (the snapshot then showed the
//! file's picture), fetched from internal HTTP servers, and opened raw
//! `tcp://` connections. Streams from the config file are the operator's own
//! choice and are not checked here.
//!
//! The rules, in order: the scheme must be in `server.stream_schemes`; the
//! URL must parse the way FFmpeg's `av_url_split` reads it, with nothing two
//! parsers could read differently; every address the host resolves to must
//! be outside `server.stream_deny` and, when `server.stream_allow` is set,
//! inside it; a local path must resolve (after `..` and symlinks) under
//! `server.media_root` and be a plain video container. Errors for the
//! client are generic where the detail would be an oracle (does this file
//! exist, does this name resolve to an internal address); the detail is
//! logged.
//!
//! A name is resolved once per open, here, and FFmpeg is handed the checked
//! address, never the name ([`CheckedSource::targets`]): otherwise FFmpeg
//! resolves the name again and a hostile DNS server (rebinding) can answer
//! an allowed address to the check and `169.254.169.254` or `127.0.0.1` to
//! FFmpeg. TLS schemes (`rtsps`, `https`) are pinned the same way (see
//! [`pin_url`] for what that costs them).

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_core::config::{is_network_url, parse_cidr, CidrError, ServerConfig};

/// What the client is told when the detail would leak something.
pub const GENERIC_REFUSAL: &str = "cannot open the source";

/// An IP network (`addr/len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        parse_cidr(s).map(|(addr, len)| Cidr { addr, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are the IPv4 address
/// they carry: the kernel connects to that, so the rules must see it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Resolves a host name (with the port the scheme implies) to addresses.
type ResolveFn = dyn Fn(&str, u16) -> std::io::Result<Vec<IpAddr>> + Send + Sync;

/// The resolver the policy asks: the system's (`getaddrinfo`) unless a test
/// plays a rebinding DNS server.
#[derive(Clone, Default)]
struct Resolver(Option<Arc<ResolveFn>>);

impl Resolver {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        match &self.0 {
            Some(f) => f(host, port),
            None => Ok((host, port).to_socket_addrs()?.map(|a| a.ip()).collect()),
        }
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "custom" } else { "system" })
    }
}

/// `[server]`'s source rules, parsed once.
#[derive(Debug, Clone, Default)]
pub struct SourcePolicy {
    schemes: Vec<String>,
    deny: Vec<Cidr>,
    allow: Vec<Cidr>,
    media_root: Option<PathBuf>,
    resolver: Resolver,
}

impl SourcePolicy {
    /// Builds the policy from a validated config (a CIDR that does not parse
    /// was reported by validation; here it is skipped).
    pub fn from_config(cfg: &ServerConfig) -> SourcePolicy {
        let nets = |list: &[String]| list.iter().filter_map(|c| Cidr::parse(c).ok()).collect();
        SourcePolicy {
            schemes: cfg
                .stream_schemes
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            deny: nets(&cfg.stream_deny),
            allow: nets(&cfg.stream_allow),
            media_root: cfg.media_root.clone(),
            resolver: Resolver::default(),
        }
    }

    /// Resolves names with `f` instead of the system resolver (tests: a DNS
    /// server that answers differently from one lookup to the next).
    #[cfg(test)]
    pub fn with_resolver(
        mut self,
        f: impl Fn(&str, u16) -> std::io::Result<Vec<IpAddr>> + Send + Sync + 'static,
    ) -> SourcePolicy {
        self.resolver = Resolver(Some(Arc::new(f)));
        self
    }
}

/// A source that passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedSource {
    /// A network URL whose host resolved only to permitted addresses.
    Network {
        scheme: String,
        host: String,
        addrs: Vec<IpAddr>,
    },
    /// A local file under `media_root`: its canonical path, to be opened
    /// instead of what the client wrote.
    File(PathBuf),
}

impl CheckedSource {
    /// What to hand FFmpeg for `url` (the URL that was checked), in the
    /// order to try: the canonical file, or the URL once per checked
    /// address with that address in place of the host ([`pin_url`]), in
    /// the resolver's order, so FFmpeg connects only where the check looked
    /// and never resolves the name itself. Each pair is (address as
    /// written in the URL, URL).
    pub fn targets(&self, url: &str) -> Vec<(String, String)> {
        match self {
            CheckedSource::File(p) => {
                let p = p.to_string_lossy().into_owned();
                vec![(p.clone(), p)]
            }
            CheckedSource::Network { addrs, .. } => addrs
                .iter()
                .filter_map(|&ip| Some((canonical(ip).to_string(), pin_url(url, ip)?)))
                .collect(),
        }
    }
}

/// `url` with its host replaced by `ip` (IPv6 in brackets); the scheme,
/// userinfo, port, path, query and fragment are kept as written. `None` if
/// `url` has no `scheme://`. The authority is split the way
/// [`check_stream_source`] (and FFmpeg's `av_url_split`) read it.
///
/// For `rtsps` and `https` this is a choice with a cost, made on purpose:
/// FFmpeg then sends no TLS SNI (it sends none for an address) and an
/// `https` camera gets the address in its `Host` header. It does not weaken
/// certificate checks, because there are none to weaken: vigil leaves
/// FFmpeg's `tls_verify` off (cameras mostly have self-signed
/// certificates), so the name in the URL never authenticated the camera,
/// while a second lookup of it would let a rebinding DNS server send the
/// connection to an internal address. A camera that needs SNI or a name
/// check is added in the config file, whose streams are the operator's own
/// and are opened as written.
pub fn pin_url(url: &str, ip: IpAddr) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let port = match hostport.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.1,
        None => hostport.find(':').map_or("", |i| &hostport[i..]),
    };
    let host = match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    Some(format!("{scheme}://{userinfo}{host}{port}{tail}"))
}

/// Why a source was refused. `Display` is the detail for the log;
/// [`SourcePolicyError::client_message`] is what the API client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourcePolicyError {
    #[error("scheme {scheme:?} is not allowed (server.stream_schemes: {allowed})")]
    Scheme { scheme: String, allowed: String },
    #[error("local paths are not allowed (server.media_root is not set)")]
    LocalPathsOff,
    #[error("malformed URL: {0}")]
    Malformed(String),
    #[error("host {host:?} does not resolve: {reason}")]
    Resolve { host: String, reason: String },
    #[error("host {host:?} resolves to {addr}, which server.stream_deny refuses")]
    Denied { host: String, addr: IpAddr },
    #[error("host {host:?} resolves to {addr}, which is outside server.stream_allow")]
    NotAllowed { host: String, addr: IpAddr },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

impl SourcePolicyError {
    /// What an API client is told: the rule it broke when it could have
    /// known the rule, else the generic refusal (no oracle for file
    /// existence, name resolution or internal addresses).
    pub fn client_message(&self) -> String {
        match self {
            SourcePolicyError::Scheme { .. }
            | SourcePolicyError::LocalPathsOff
            | SourcePolicyError::Malformed(_) => format!("url: {self}"),
            _ => format!("url: {GENERIC_REFUSAL}"),
        }
    }
}

/// Checks a stream URL from an API client against the policy; blocking (DNS,
/// file system). Call it for every add and change, and again before every
/// reconnect (names can be re-pointed after the first check).
pub fn check_stream_source(
    url: &str,
    policy: &SourcePolicy,
) -> Result<CheckedSource, SourcePolicyError> {
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(SourcePolicyError::Malformed(
            "control characters, spaces and backslashes are not allowed".into(),
        ));
    }
    let lower = url.to_ascii_lowercase();
    let is_file_url = lower.starts_with("file://");
    if !is_network_url(url) && !is_file_url {
        if let Some((scheme, _)) = url.split_once(':') {
            // FFmpeg reads `concat:`, `subfile:`, `data:` ... as protocols.
            if !scheme.is_empty() && !scheme.contains('/') {
                return Err(scheme_error(scheme, policy));
            }
        }
        return check_file(url, policy);
    }
    if is_file_url {
        return check_file(&url["file://".len()..], policy);
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| SourcePolicyError::Malformed("no scheme".into()))?;
    let scheme = scheme.to_ascii_lowercase();
    if !policy.schemes.contains(&scheme) {
        return Err(scheme_error(&scheme, policy));
    }
    let (host, port) = split_authority(rest)?;
    let port = port.unwrap_or(match scheme.as_str() {
        "rtsps" => 322,
        "http" => 80,
        "https" => 443,
        _ => 554,
    });
    let mut addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => policy
            .resolver
            .resolve(&host, port)
            .map_err(|e| SourcePolicyError::Resolve {
                host: host.clone(),
                reason: e.to_string(),
            })?,
    };
    // getaddrinfo answers once per socket type; keep the first of each.
    let mut seen = Vec::new();
    addrs.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    if addrs.is_empty() {
        return Err(SourcePolicyError::Resolve {
            host,
            reason: "no addresses".into(),
        });
    }
    // Every address: FFmpeg may connect to any of them.
    for &addr in &addrs {
        let ip = canonical(addr);
        if policy.deny.iter().any(|n| n.contains(ip)) {
            return Err(SourcePolicyError::Denied { host, addr: ip });
        }
        if !policy.allow.is_empty() && !policy.allow.iter().any(|n| n.contains(ip)) {
            return Err(SourcePolicyError::NotAllowed { host, addr: ip });
        }
    }
    Ok(CheckedSource::Network {
        scheme,
        host,
        addrs,
    })
}

fn scheme_error(scheme: &str, policy: &SourcePolicy) -> SourcePolicyError {
    SourcePolicyError::Scheme {
        scheme: scheme.to_ascii_lowercase(),
        allowed: if policy.schemes.is_empty() {
            "none".into()
        } else {
            policy.schemes.join(", ")
        },
    }
}

/// Host and port the way FFmpeg's `av_url_split` reads them: the authority
/// ends at the first `/`, `?` or `#`; userinfo ends at its last `@`; an IPv6
/// literal is bracketed. Anything FFmpeg and the resolver could read
/// differently (percent-escapes or odd characters in the host) is refused.
fn split_authority(rest: &str) -> Result<(String, Option<u16>), SourcePolicyError> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let bad = |why: &str| SourcePolicyError::Malformed(why.to_string());
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
        };
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        (h.to_string(), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if !host.contains(':')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(bad(
            "the host may contain only letters, digits, '.', '-' and '_'",
        ));
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("the port must be 1-65535"))?,
        ),
    };
    Ok((host, port))
}

/// A local file: only under `media_root` (after resolving `..` and
/// symlinks), a regular file, and a plain video container.
fn check_file(path: &str, policy: &SourcePolicy) -> Result<CheckedSource, SourcePolicyError> {
    let root = policy
        .media_root
        .as_deref()
        .ok_or(SourcePolicyError::LocalPathsOff)?;
    let file_err = |reason: String| SourcePolicyError::File {
        path: path.to_string(),
        reason,
    };
    let root = root
        .canonicalize()
        .map_err(|e| file_err(format!("server.media_root {}: {e}", root.display())))?;
    let p = Path::new(path);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    };
    let canon = joined.canonicalize().map_err(|e| file_err(e.to_string()))?;
    if !canon.starts_with(&root) {
        return Err(file_err(format!(
            "resolves to {} outside server.media_root {}",
            canon.display(),
            root.display()
        )));
    }
    let meta = std::fs::metadata(&canon).map_err(|e| file_err(e.to_string()))?;
    if !meta.is_file() {
        return Err(file_err("not a regular file".into()));
    }
    match vigil_video::Container::sniff_file(&canon) {
        Ok(Some(_)) => Ok(CheckedSource::File(canon)),
        Ok(None) => Err(file_err(format!(
            "not a video container vigil accepts ({})",
            vigil_video::Container::ACCEPTED
        ))),
        Err(e) => Err(file_err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(
        schemes: &[&str],
        deny: &[&str],
        allow: &[&str],
        root: Option<&Path>,
    ) -> SourcePolicy {
        SourcePolicy::from_config(&ServerConfig {
            stream_schemes: schemes.iter().map(|s| (*s).to_string()).collect(),
            stream_deny: deny.iter().map(|s| (*s).to_string()).collect(),
            stream_allow: allow.iter().map(|s| (*s).to_string()).collect(),
            media_root: root.map(Path::to_path_buf),
            ..ServerConfig::default()
        })
    }

    fn default_policy() -> SourcePolicy {
        SourcePolicy::from_config(&ServerConfig::default())
    }

    #[test]
    fn default_policy_refuses_the_host_itself_metadata_and_other_protocols() {
        let p = default_policy();
        for url in [
            "rtsp://127.0.0.1:8554/x",
            "rtsp://user:pw@127.0.0.1/x",
            "rtsp://localhost/x",
            "rtsp://[::1]/x",
            "rtsp://[::ffff:127.0.0.1]/x",
            "rtsp://2130706433/x",
            "rtsp://0x7f.1/x",
            "rtsp://169.254.169.254/latest",
            "rtsp://[fe80::1]/x",
            "rtsp://239.1.1.1/x",
            "rtsp://0.0.0.0/x",
        ] {
            let e = check_stream_source(url, &p).expect_err(url);
            assert!(
                matches!(e, SourcePolicyError::Denied { .. }),
                "{url}: {e:?}"
            );
            assert_eq!(e.client_message(), "url: cannot open the source");
        }
        for url in [
            "tcp://10.0.0.1:554",
            "http://10.0.0.1/mjpeg",
            "udp://10.0.0.1:1234",
            "concat:/etc/a.mp4|/etc/b.mp4",
            "subfile,,start,0,end,0,,:/etc/passwd",
            "data:video/mp4;base64,AAAA",
            "hls+http://10.0.0.1/x.m3u8",
        ] {
            let e = check_stream_source(url, &p).expect_err(url);
            assert!(
                matches!(e, SourcePolicyError::Scheme { .. }),
                "{url}: {e:?}"
            );
        }
        for url in ["/etc/passwd", "data/video/vtest.avi", "file:///etc/hosts"] {
            assert_eq!(
                check_stream_source(url, &p),
                Err(SourcePolicyError::LocalPathsOff),
                "{url}"
            );
        }
    }

    #[test]
    fn cameras_on_private_networks_pass() {
        let p = default_policy();
        for url in [
            "rtsp://admin:p@ss@192.168.1.20:554/h264",
            "rtsps://10.1.2.3/live",
            "RTSP://172.16.0.9/x",
            "rtsp://[fd00::5]:8554/x",
        ] {
            assert!(
                matches!(
                    check_stream_source(url, &p),
                    Ok(CheckedSource::Network { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn allow_list_narrows_and_parser_tricks_are_refused() {
        let p = policy(&["rtsp", "http"], &[], &["10.0.0.0/8"], None);
        assert!(check_stream_source("rtsp://10.9.9.9/x", &p).is_ok());
        assert!(matches!(
            check_stream_source("rtsp://192.168.1.1/x", &p),
            Err(SourcePolicyError::NotAllowed { .. })
        ));
        for url in [
            "rtsp://10.0.0.1\\@127.0.0.1/x",
            "rtsp://10.0.0.1 /x",
            "rtsp://%31%32%37.0.0.1/x",
            "rtsp://10.0.0.1:99999/x",
            "rtsp://[::1/x",
            "rtsp:///x",
        ] {
            assert!(
                matches!(
                    check_stream_source(url, &p),
                    Err(SourcePolicyError::Malformed(_))
                ),
                "{url}"
            );
        }
        // The last '@' ends the userinfo, as in FFmpeg.
        assert!(matches!(
            check_stream_source("rtsp://127.0.0.1@10.0.0.1/x", &p),
            Ok(CheckedSource::Network { ref host, .. }) if host == "10.0.0.1"
        ));
    }

    #[test]
    fn local_files_only_under_media_root_and_only_containers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("media");
        std::fs::create_dir(&root).unwrap();
        let mut avi = b"RIFF\x10\0\0\0AVI LIST".to_vec();
        avi.resize(64, 0);
        std::fs::write(root.join("cam.avi"), &avi).unwrap();
        std::fs::write(root.join("list.m3u8"), b"#EXTM3U\n/etc/x.avi\n").unwrap();
        std::fs::write(tmp.path().join("outside.avi"), &avi).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside.avi"), root.join("link.avi")).unwrap();
        let p = policy(&["rtsp"], &[], &[], Some(&root));
        let canon = root.canonicalize().unwrap().join("cam.avi");
        assert_eq!(
            check_stream_source("cam.avi", &p),
            Ok(CheckedSource::File(canon.clone()))
        );
        assert_eq!(
            check_stream_source(canon.to_str().unwrap(), &p),
            Ok(CheckedSource::File(canon.clone()))
        );
        for url in [
            "../outside.avi",
            "link.avi",
            "list.m3u8",
            "missing.avi",
            ".",
            "/etc/passwd",
        ] {
            let e = check_stream_source(url, &p).expect_err(url);
            assert!(matches!(e, SourcePolicyError::File { .. }), "{url}: {e:?}");
            // Missing, outside, directory and playlist all read the same.
            assert_eq!(e.client_message(), "url: cannot open the source", "{url}");
        }
    }

    #[test]
    fn pinned_urls_keep_everything_but_the_host() {
        let v4: IpAddr = "10.0.0.7".parse().unwrap();
        let v6: IpAddr = "fd00::5".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.8".parse().unwrap();
        for (url, ip, want) in [
            (
                "rtsp://admin:p@ss@cam.lan:8554/h264?auth_token=x&a=1#f",
                v4,
                "rtsp://admin:p@ss@10.0.0.7:8554/h264?auth_token=x&a=1#f",
            ),
            ("rtsp://cam.lan/x", v6, "rtsp://[fd00::5]/x"),
            ("RTSPS://u@cam.lan:322", v6, "RTSPS://u@[fd00::5]:322"),
            ("http://cam.lan?snap=1", v4, "http://10.0.0.7?snap=1"),
            (
                "https://cam.lan:8443/mjpeg",
                mapped,
                "https://10.0.0.8:8443/mjpeg",
            ),
            ("rtsp://[fd00::9]:554/x", v6, "rtsp://[fd00::5]:554/x"),
            // Userinfo ends at the last '@', as in the check and FFmpeg.
            (
                "rtsp://127.0.0.1@cam.lan/x",
                v4,
                "rtsp://127.0.0.1@10.0.0.7/x",
            ),
        ] {
            assert_eq!(pin_url(url, ip).as_deref(), Some(want), "{url}");
        }
        assert_eq!(pin_url("/media/cam.avi", v4), None);
    }

    #[test]
    fn a_name_is_resolved_by_the_policy_and_opened_as_the_checked_address() {
        let lookups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = Arc::clone(&lookups);
        // A rebinding DNS server: an allowed address first, then the
        // metadata service.
        let p = default_policy().with_resolver(move |host, port| {
            assert_eq!((host, port), ("cam.example", 554));
            Ok(match n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => vec!["10.0.0.7".parse().unwrap(), "10.0.0.7".parse().unwrap()],
                _ => vec!["169.254.169.254".parse().unwrap()],
            })
        });
        let url = "rtsp://u:pw@cam.example/live";
        let checked = check_stream_source(url, &p).unwrap();
        assert_eq!(
            checked.targets(url),
            vec![(
                "10.0.0.7".to_string(),
                "rtsp://u:pw@10.0.0.7/live".to_string()
            )]
        );
        let e = check_stream_source(url, &p).unwrap_err();
        assert!(matches!(e, SourcePolicyError::Denied { .. }), "{e:?}");
        assert_eq!(e.client_message(), "url: cannot open the source");
    }
}
