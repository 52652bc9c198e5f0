//! The runnable form of a [`Config`]: every TLS block built, every static root opened, and
//! the listen addresses grouped with the virtual hosts that share them.
//!
//! Building is also what `mtls check` runs: every file the config names is read and every
//! certificate and key is loaded here, and a failure points at the config line that named
//! the file (`FILE:LINE:COL: key: ...`), so `check` passing means `serve` will start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mtls_tls::{ServerTlsSettings, TlsError, TlsServer};

use crate::config::{
    AccessLog, Action, AllowRule, ClientAuth, Config, ConfigError, ConfigErrors, PathMatch,
    Position, Proxy, ProxyTls, ProxyUpstream, ServerName, SessionCache, Timeouts, TlsSettings,
    VerifyClient,
};
use crate::config::{DEFAULT_CLIENT_MAX_BODY_SIZE, DEFAULT_UPSTREAM_KEEPALIVE};
use crate::files::StaticFiles;
use crate::inventory::Inventory;
use crate::lint;
use crate::proxy::{Balancer, ProxyRoute};

/// A built configuration, ready to run.
#[derive(Debug)]
pub struct Site {
    /// The certificates and CRLs loaded, with their dates, for the metrics.
    pub(crate) inventory: Inventory,
    /// The files a reload reads again (`Config::tls_files`).
    pub(crate) files: Vec<PathBuf>,
    /// What `mtls check` warns of (`lint`): the site works, but not for every client.
    pub(crate) warnings: Vec<ConfigError>,
    pub(crate) hosts: Vec<VirtualHost>,
    pub(crate) listeners: Vec<ListenerPlan>,
    pub(crate) access_log: AccessLog,
    pub(crate) metrics: Option<SocketAddr>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) worker_rlimit_nofile: Option<u64>,
    pub(crate) ssl_handshake_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    /// The top-level client timeouts (the metrics listener's).
    pub(crate) timeouts: Timeouts,
}

/// One `[[server]]` block.
#[derive(Debug)]
pub(crate) struct VirtualHost {
    pub(crate) names: Vec<ServerName>,
    /// The addresses of its `listen` (with the names, what identifies a block across a
    /// reload).
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) tls: Option<Arc<TlsServer>>,
    pub(crate) routes: Vec<Route>,
    /// `large_client_header_buffers`, in total.
    pub(crate) max_request_head: usize,
    /// `client_header_timeout`, `client_body_timeout`, `send_timeout`, `keepalive_timeout`.
    pub(crate) timeouts: Timeouts,
}

/// One `[[server.location]]`.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) path: PathMatch,
    pub(crate) action: RouteAction,
    pub(crate) client_auth: ClientAuth,
    pub(crate) allow: Vec<AllowRule>,
    /// `client_max_body_size`, the location's or else the server's; `None`: no limit.
    pub(crate) max_body: Option<u64>,
}

/// What a route does.
#[derive(Debug)]
pub(crate) enum RouteAction {
    Static(StaticFiles),
    Return { status: u16, target: Option<String> },
    Proxy(Box<ProxyRoute>),
}

/// One address to listen on and the hosts reachable through it.
#[derive(Debug)]
pub(crate) struct ListenerPlan {
    pub(crate) addr: SocketAddr,
    /// Where the config asks for it (`FILE:LINE` of its first `[[server]]`), for errors
    /// found when it is bound.
    pub(crate) origin: String,
    pub(crate) tls: bool,
    /// Indexes into [`Site::hosts`], in config order.
    pub(crate) hosts: Vec<usize>,
    /// The host used when no name matches (the `default_server`, else the first).
    pub(crate) default_host: usize,
    /// The largest `large_client_header_buffers` of its hosts: before the Host is read
    /// (plain HTTP), the request head is read with this limit.
    pub(crate) max_request_head: usize,
}

impl Site {
    /// Problems that do not stop the gateway: a certificate that expires soon or does not
    /// name a `server_name`, a static root that holds a private key. In file order.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// Build everything `config` describes, reading every file it names.
    pub fn build(config: &Config) -> Result<Site, ConfigErrors> {
        Site::build_after(config, None)
    }

    /// Build the site that replaces `previous` (a reload): a TLS block that keeps its
    /// `server_name`s and `listen` addresses keeps the session cache and ticket keys of the
    /// block it replaces (when its session settings are unchanged), so sessions resume
    /// across the reload.
    pub fn build_after(config: &Config, previous: Option<&Site>) -> Result<Site, ConfigErrors> {
        let mut errors = Vec::new();
        let mut findings = lint::Findings::default();
        let mut hosts = Vec::new();
        // One balancer per group, shared by every location that names it, so round robin
        // and "this server is down" are the group's, as in nginx.
        let groups: BTreeMap<&str, (Arc<Balancer>, Option<&ProxyTls>, Duration)> = config
            .upstreams
            .iter()
            .map(|u| {
                let balancer = Balancer::new(u.name.clone(), u.servers.clone(), u.fail_timeout);
                let group = (Arc::new(balancer), u.tls.as_ref(), u.keepalive_timeout);
                (u.name.as_str(), group)
            })
            .collect();
        for server in &config.servers {
            if let Some(tls) = &server.tls {
                lint::client_verification(config, tls, &mut findings);
                lint::crl_issuers(config, tls, &mut findings);
                lint::keylog(config, server, tls, &mut findings);
            }
            let tls = match &server.tls {
                Some(tls) => match TlsServer::build_after(
                    &tls_settings(tls),
                    previous.and_then(|p| p.same_block(server)),
                ) {
                    Ok(built) => {
                        let leaf = built.certificate();
                        lint::server_certificate(config, server, tls, &leaf.der, &mut findings);
                        errors.append(&mut findings.errors);
                        Some(Arc::new(built))
                    }
                    Err(e) => {
                        errors.push(locate(config, tls, &e));
                        None
                    }
                },
                None => None,
            };
            let mut routes = Vec::new();
            for location in &server.locations {
                let action = match &location.action {
                    Action::Static { root, index } => match StaticFiles::new(root, index.clone()) {
                        Ok(files) => {
                            if let Some(key) = lint::private_key_under(root) {
                                findings.warnings.push(ConfigError::new(
                                    config.source.clone(),
                                    Some(location.at),
                                    "root",
                                    format!(
                                        "{} holds private key material ({}): anyone who \
                                         reaches this location can download it; serve a \
                                         directory of public files only, such as the CA \
                                         directory's public/",
                                        root.display(),
                                        key.display()
                                    ),
                                ));
                            }
                            RouteAction::Static(files)
                        }
                        Err(e) => {
                            errors.push(ConfigError::new(
                                config.source.clone(),
                                Some(location.at),
                                "root",
                                format!("{}: {e}", root.display()),
                            ));
                            continue;
                        }
                    },
                    Action::Return { status, target } => RouteAction::Return {
                        status: *status,
                        target: target.clone(),
                    },
                    Action::Proxy(proxy) => {
                        let (balancer, group_tls, keepalive) = match &proxy.upstream {
                            ProxyUpstream::Address(address) => (
                                Arc::new(Balancer::new(
                                    address.to_string(),
                                    vec![address.clone()],
                                    Duration::from_secs(10),
                                )),
                                None,
                                DEFAULT_UPSTREAM_KEEPALIVE,
                            ),
                            ProxyUpstream::Group(name) => match groups.get(name.as_str()) {
                                Some((balancer, tls, keepalive)) => {
                                    (balancer.clone(), *tls, *keepalive)
                                }
                                None => {
                                    errors.push(ConfigError::new(
                                        config.source.clone(),
                                        Some(proxy.at),
                                        "proxy_pass",
                                        format!("no [[upstream]] named {name:?}"),
                                    ));
                                    continue;
                                }
                            },
                        };
                        let tls = proxy.tls.as_ref().or(group_tls);
                        let before = previous.and_then(|p| p.same_proxy(server, &location.path));
                        let built = ProxyRoute::build(
                            proxy,
                            tls,
                            balancer,
                            keepalive,
                            server.underscores_in_headers,
                            before,
                        );
                        match built {
                            Ok(route) => RouteAction::Proxy(Box::new(route)),
                            Err(e) => {
                                errors.push(locate_proxy(config, proxy, tls, &e));
                                continue;
                            }
                        }
                    }
                };
                routes.push(Route {
                    path: location.path.clone(),
                    action,
                    client_auth: location.client_auth,
                    allow: location.allow.clone(),
                    max_body: match location
                        .client_max_body_size
                        .or(server.client_max_body_size)
                        .unwrap_or(DEFAULT_CLIENT_MAX_BODY_SIZE)
                    {
                        0 => None,
                        limit => Some(limit),
                    },
                });
            }
            hosts.push(VirtualHost {
                names: server.server_names.clone(),
                listen: server.listen.iter().map(|l| l.addr).collect(),
                tls,
                routes,
                max_request_head: server.max_request_head,
                timeouts: server.timeouts,
            });
        }
        // `serve` writes the pid file once its ports are bound; a directory that is not
        // there would stop it then, after `check` said ok.
        if let Some(dir) = config.pid.parent()
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            errors.push(ConfigError::new(
                config.source.clone(),
                None,
                "pid",
                format!(
                    "{}: the directory {} does not exist",
                    config.pid.display(),
                    dir.display()
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }

        let mut by_addr: BTreeMap<SocketAddr, ListenerPlan> = BTreeMap::new();
        for (index, server) in config.servers.iter().enumerate() {
            for listen in &server.listen {
                let plan = by_addr.entry(listen.addr).or_insert_with(|| ListenerPlan {
                    addr: listen.addr,
                    origin: format!("{}:{}", config.source.display(), server.at),
                    tls: server.tls.is_some(),
                    hosts: Vec::new(),
                    default_host: index,
                    max_request_head: 0,
                });
                plan.max_request_head = plan.max_request_head.max(server.max_request_head);
                if listen.default_server {
                    plan.default_host = index;
                }
                plan.hosts.push(index);
            }
        }
        Ok(Site {
            inventory: Inventory::read(config),
            files: config.tls_files(),
            warnings: findings.warnings,
            hosts,
            listeners: by_addr.into_values().collect(),
            access_log: config.access_log.clone(),
            metrics: config.metrics,
            max_connections: config.max_connections,
            worker_rlimit_nofile: config.worker_rlimit_nofile,
            ssl_handshake_timeout: config.ssl_handshake_timeout,
            shutdown_timeout: Duration::from_secs(10),
            timeouts: config.timeouts,
        })
    }

    /// How long a client may take to finish the TLS handshake: overrides the config's
    /// `ssl_handshake_timeout` (default 60 s).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Site {
        self.ssl_handshake_timeout = timeout;
        self
    }

    /// How long shutdown waits for in-flight requests, default 10 s.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Site {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long a connection may stay idle between requests before it is closed: overrides
    /// every server's `keepalive_timeout` (default 75 s).
    pub fn with_keepalive_timeout(mut self, timeout: Duration) -> Site {
        self.timeouts.keepalive = timeout;
        for host in &mut self.hosts {
            host.timeouts.keepalive = timeout;
        }
        self
    }

    /// The TLS block of this site that `server` (of the next config) replaces: the same
    /// names on the same addresses.
    fn same_block(&self, server: &crate::config::Server) -> Option<&TlsServer> {
        let listen: Vec<SocketAddr> = server.listen.iter().map(|l| l.addr).collect();
        self.hosts
            .iter()
            .find(|h| h.names == server.server_names && h.listen == listen)
            .and_then(|h| h.tls.as_deref())
    }

    /// The proxy route of this site that the location `path` of `server` (of the next
    /// config) replaces, to keep its pool when nothing about it changed.
    fn same_proxy(&self, server: &crate::config::Server, path: &PathMatch) -> Option<&ProxyRoute> {
        let listen: Vec<SocketAddr> = server.listen.iter().map(|l| l.addr).collect();
        let host = self
            .hosts
            .iter()
            .find(|h| h.names == server.server_names && h.listen == listen)?;
        host.routes.iter().find_map(|r| match &r.action {
            RouteAction::Proxy(proxy) if &r.path == path => Some(&**proxy),
            _ => None,
        })
    }

    /// The index of the listener on `addr`, if this site listens there.
    pub(crate) fn listener_on(&self, addr: SocketAddr) -> Option<usize> {
        self.listeners.iter().position(|l| l.addr == addr)
    }

    /// Whether any TLS block's CRLs now list `leaf` (a client certificate that verified
    /// before): the refusal, or `None`.
    pub(crate) fn revoked(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
    ) -> Option<mtls_tls::Refusal> {
        self.hosts
            .iter()
            .filter_map(|h| h.tls.as_deref())
            .find_map(|tls| tls.revoked(leaf, intermediates))
    }

    /// Every file the site was built from that a reload would read again: certificates,
    /// keys, CA files, CRLs, ticket keys (for the file watcher).
    pub fn watched_files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The addresses this site listens on, and whether each speaks TLS.
    pub fn listen_addresses(&self) -> Vec<(SocketAddr, bool)> {
        self.listeners.iter().map(|l| (l.addr, l.tls)).collect()
    }

    /// Where `GET /metrics` is served, if anywhere.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The host serving `name` on `listener`: the first whose `server_name` matches
    /// (exact names before wildcards, like nginx), else the listener's default.
    pub(crate) fn host_for(&self, listener: &ListenerPlan, name: Option<&str>) -> usize {
        let Some(name) = name else {
            return listener.default_host;
        };
        let name = name.trim_end_matches('.');
        let exact = listener.hosts.iter().find(|&&i| {
            self.hosts[i]
                .names
                .iter()
                .any(|n| matches!(n, ServerName::Exact(_)) && n.matches(name))
        });
        let wildcard = || {
            listener
                .hosts
                .iter()
                .find(|&&i| self.hosts[i].names.iter().any(|n| n.matches(name)))
        };
        exact
            .or_else(wildcard)
            .copied()
            .unwrap_or(listener.default_host)
    }
}

/// Where a connection came in: its listener, and (TLS) the virtual host its SNI picked.
/// The router's view of the site, and the only one: everything past the router gets the
/// virtual host and route it picked.
#[derive(Debug, Clone)]
pub(crate) struct Entrance {
    site: Arc<Site>,
    listener: usize,
    sni_host: Option<usize>,
}

/// A request whose Host names another virtual host than the one its TLS connection (and
/// client-certificate check) was made for.
#[derive(Debug)]
pub(crate) struct Misdirected;

impl Entrance {
    pub(crate) fn new(site: Arc<Site>, listener: usize, sni_host: Option<usize>) -> Entrance {
        Entrance {
            site,
            listener,
            sni_host,
        }
    }

    fn plan(&self) -> &ListenerPlan {
        &self.site.listeners[self.listener]
    }

    /// The address clients connect to.
    pub(crate) fn local(&self) -> SocketAddr {
        self.plan().addr
    }

    /// The deadlines of this connection: its SNI host's, or (plain HTTP, where the Host is
    /// not read yet) the listener's default host's.
    pub(crate) fn timeouts(&self) -> Timeouts {
        let host = self.sni_host.unwrap_or(self.plan().default_host);
        self.site.hosts[host].timeouts
    }

    /// `large_client_header_buffers` for this connection: its SNI host's, or (plain HTTP)
    /// the largest of the listener's hosts.
    pub(crate) fn max_request_head(&self) -> usize {
        match self.sni_host {
            Some(host) => self.site.hosts[host].max_request_head,
            None => self.plan().max_request_head,
        }
    }

    /// The virtual host for a request whose Host is `name`. With TLS, a Host naming another
    /// block than SNI's is refused when either checks client certificates: the certificate
    /// (and the client check) came from the SNI block. nginx answers 421 there too.
    pub(crate) fn host(&self, name: Option<&str>) -> Result<&VirtualHost, Misdirected> {
        let by_host = self.site.host_for(self.plan(), name);
        let host = match self.sni_host {
            None => by_host,
            Some(sni) if sni == by_host => sni,
            Some(sni) => {
                let hosts = &self.site.hosts;
                if hosts[sni].verifies_clients() || hosts[by_host].verifies_clients() {
                    return Err(Misdirected);
                }
                by_host
            }
        };
        Ok(&self.site.hosts[host])
    }
}

impl VirtualHost {
    /// nginx's location choice: an exact match wins, else the longest matching prefix.
    pub(crate) fn route(&self, path: &str) -> Option<&Route> {
        let exact = self
            .routes
            .iter()
            .find(|r| matches!(r.path, PathMatch::Exact(_)) && r.path.matches(path));
        exact.or_else(|| {
            self.routes
                .iter()
                .filter(|r| r.path.matches(path))
                .max_by_key(|r| match &r.path {
                    PathMatch::Prefix(p) | PathMatch::Exact(p) => p.len(),
                })
        })
    }

    /// Whether `path`, another reading of a request's path, picks `route` too: a path that
    /// two readers would route differently is refused, never guessed at.
    pub(crate) fn routes_to(&self, path: &str, route: &Route) -> bool {
        self.route(path).is_some_and(|r| std::ptr::eq(r, route))
    }

    /// The proxy routes, for the upstream reaper.
    pub(crate) fn proxies(&self) -> impl Iterator<Item = &ProxyRoute> {
        self.routes.iter().filter_map(|r| match &r.action {
            RouteAction::Proxy(proxy) => Some(&**proxy),
            _ => None,
        })
    }

    /// Whether this host checks client certificates at all.
    pub(crate) fn verifies_clients(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| t.verify_client() != mtls_tls::VerifyClient::Off)
    }
}

fn tls_settings(tls: &TlsSettings) -> ServerTlsSettings {
    let paths = |list: &[crate::config::Sourced<PathBuf>]| -> Vec<PathBuf> {
        list.iter().map(|p| p.value.clone()).collect()
    };
    ServerTlsSettings {
        certificate: tls.certificate.value.clone(),
        key: tls.key.value.clone(),
        key_password_file: tls.key_password_file.as_ref().map(|f| f.value.clone()),
        client_ca: paths(&tls.client_ca),
        trusted_ca: paths(&tls.trusted_ca),
        verify_client: match tls.verify_client {
            VerifyClient::On => mtls_tls::VerifyClient::On,
            VerifyClient::Optional => mtls_tls::VerifyClient::Optional,
            VerifyClient::OptionalNoCa => mtls_tls::VerifyClient::OptionalNoCa,
            VerifyClient::Off => mtls_tls::VerifyClient::Off,
        },
        crl: paths(&tls.crl),
        verify_depth: tls.verify_depth,
        protocols: tls.protocols.clone(),
        ciphers: tls.ciphers.as_ref().map(|c| c.value.clone()),
        prefer_server_ciphers: tls.prefer_server_ciphers,
        session_cache: match tls.session_cache {
            SessionCache::Off => None,
            SessionCache::Sessions(n) => Some(n),
        },
        session_timeout: tls.session_timeout,
        session_tickets: tls.session_tickets,
        session_ticket_keys: paths(&tls.session_ticket_key),
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        keylog: tls.keylog.as_ref().map(|f| f.value.clone()),
    }
}

/// Point a TLS build error at the config key that named the file or setting.
fn locate(config: &Config, tls: &TlsSettings, error: &TlsError) -> ConfigError {
    let (key, at, message): (&str, Position, String) = match error {
        TlsError::File { key, path, message } => {
            let lists: &[crate::config::Sourced<PathBuf>] = match *key {
                "client_ca" => &tls.client_ca,
                "trusted_ca" => &tls.trusted_ca,
                "crl" => &tls.crl,
                "session_ticket_key" => &tls.session_ticket_key,
                _ => &[],
            };
            let at = match *key {
                "certificate" => tls.certificate.at,
                "key" => tls.key.at,
                "key_password_file" => tls.key_password_file.as_ref().map_or(tls.at, |f| f.at),
                "keylog" => tls.keylog.as_ref().map_or(tls.at, |f| f.at),
                _ => lists
                    .iter()
                    .find(|p| &p.value == path)
                    .map_or(tls.at, |p| p.at),
            };
            (key, at, format!("{}: {message}", path.display()))
        }
        TlsError::Setting { key, message } => {
            let at = match (*key, &tls.ciphers) {
                ("ciphers", Some(c)) => c.at,
                ("crl", _) => tls.crl.first().map_or(tls.at, |c| c.at),
                ("client_ca", _) => tls.client_ca.first().map_or(tls.at, |c| c.at),
                ("trusted_ca", _) => tls.trusted_ca.first().map_or(tls.at, |c| c.at),
                _ => tls.at,
            };
            (key, at, message.clone())
        }
        other => ("tls", tls.at, other.to_string()),
    };
    ConfigError::new(config.source.clone(), Some(at), key, message)
}

/// Point a proxy_tls build error at the key that named the file.
fn locate_proxy(
    config: &Config,
    proxy: &Proxy,
    tls: Option<&ProxyTls>,
    error: &TlsError,
) -> ConfigError {
    let (key, at, message) = match (error, tls) {
        (TlsError::File { key, path, message }, Some(tls)) => {
            let at = match *key {
                "certificate" => tls.certificate.as_ref().map(|c| c.at),
                "key" => tls.key.as_ref().map(|k| k.at),
                "key_password_file" => tls.key_password_file.as_ref().map(|f| f.at),
                _ => tls
                    .trusted_ca
                    .iter()
                    .find(|p| &p.value == path)
                    .map(|p| p.at),
            };
            (
                format!("proxy_tls.{key}"),
                at.unwrap_or(tls.at),
                format!("{}: {message}", path.display()),
            )
        }
        (TlsError::Setting { key, message }, tls) => (
            format!("proxy_tls.{key}"),
            tls.map_or(proxy.at, |t| t.at),
            message.clone(),
        ),
        (other, _) => ("proxy_tls".to_owned(), proxy.at, other.to_string()),
    };
    ConfigError::new(config.source.clone(), Some(at), key, message)
}
