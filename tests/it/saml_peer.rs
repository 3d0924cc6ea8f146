//! The real SAML 2.0 identity provider of the tests: Debian's `simplesamlphp` (1.19)
//! under `php -S` on a free 127.0.0.1 port, with a private config dir in a temp dir
//! (its own key and certificate, generated per run; static users with multi-valued
//! `groups` and the AWS Role attribute; the SP entries the test passes). Helpers get
//! a real `SAMLResponse` IdP-initiated or for an AuthnRequest redirect URL (scripted
//! login through `loginuserpass.php`), and the IdP's metadata XML.
//! Used by the SAML sign-in, STS and attack tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};

use super::oidc_peer::Browser;

/// Where Debian installs simplesamlphp's web root.
pub const SSP_WWW: &str = "/usr/share/simplesamlphp/www";
/// The AWS role attribute name.
pub const AWS_ROLE_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
pub const AWS_SESSION_NAME_ATTRIBUTE: &str =
    "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// An SP entry in the IdP's `saml20-sp-remote.php`.
#[derive(Clone, Debug)]
pub struct SamlSp {
    pub entity_id: String,
    /// Where the IdP posts the response (and what it puts in Destination/Recipient).
    pub acs_url: String,
    /// The SP's encryption certificate (PEM): assertions to it are encrypted.
    pub encryption_cert_pem: Option<String>,
    /// The SP's signing certificate (PEM), for signed AuthnRequests.
    pub signing_cert_pem: Option<String>,
    /// Require signed AuthnRequests from this SP.
    pub validate_authnrequest: bool,
    pub sign_response: bool,
    pub sign_assertion: bool,
}

impl SamlSp {
    /// An SP whose responses and assertions are both signed, unencrypted.
    pub fn new(entity_id: &str, acs_url: &str) -> Self {
        Self {
            entity_id: entity_id.to_owned(),
            acs_url: acs_url.to_owned(),
            encryption_cert_pem: None,
            signing_cert_pem: None,
            validate_authnrequest: false,
            sign_response: true,
            sign_assertion: true,
        }
    }
}

/// A static user of the IdP (`exampleauth:UserPass`): the NameID is `uid`.
#[derive(Clone, Debug)]
pub struct SamlUser {
    pub username: String,
    pub password: String,
    /// Attribute name -> values (multi-valued allowed). `uid` is added when missing.
    pub attributes: Vec<(String, Vec<String>)>,
}

impl SamlUser {
    pub fn new(username: &str, password: &str, attributes: &[(&str, &[&str])]) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            attributes: attributes
                .iter()
                .map(|(name, values)| {
                    (
                        (*name).to_owned(),
                        values.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
        }
    }
}

/// The default users: `alice` (groups developers + admins, two AWS roles) and `bob`
/// (group developers). AWS role values name account 123456789012 and a SAML provider
/// `corp-idp`; tests that need other values pass their own users.
pub fn default_users() -> Vec<SamlUser> {
    vec![
        SamlUser::new(
            "alice",
            "alice-pass",
            &[
                ("email", &["alice@corp.example"]),
                ("displayName", &["Alice Liddell"]),
                ("groups", &["developers", "admins"]),
                (
                    AWS_ROLE_ATTRIBUTE,
                    &[
                        "arn:aws:iam::123456789012:role/Developer,arn:aws:iam::123456789012:saml-provider/corp-idp",
                        "arn:aws:iam::123456789012:saml-provider/corp-idp,arn:aws:iam::123456789012:role/Admin",
                    ],
                ),
                (AWS_SESSION_NAME_ATTRIBUTE, &["alice@corp.example"]),
            ],
        ),
        SamlUser::new(
            "bob",
            "bob-pass",
            &[
                ("email", &["bob@corp.example"]),
                ("displayName", &["Bob"]),
                ("groups", &["developers"]),
            ],
        ),
    ]
}

/// A freshly generated RSA key and self-signed certificate (PEM and DER).
#[derive(Clone)]
pub struct KeyPair {
    pub key_pem: String,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
}

impl KeyPair {
    pub fn generate(common_name: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", common_name).unwrap();
        let name = name.build();
        let mut builder = X509::builder().unwrap();
        builder.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        builder
            .set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        builder
            .set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        builder
            .set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = builder.build();
        Self {
            key_pem: String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
            cert_pem: String::from_utf8(cert.to_pem().unwrap()).unwrap(),
            cert_der: cert.to_der().unwrap(),
        }
    }
}

/// simplesamlphp under `php -S`, in its own process group, stopped on drop.
pub struct SamlIdp {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    /// `http://127.0.0.1:<port>/saml2/idp/metadata.php`
    pub entity_id: String,
    /// The IdP's signing key and certificate (generated for this run).
    pub keys: KeyPair,
    pub dir: tempfile::TempDir,
}

/// Whether php and simplesamlphp are here; under CI a missing peer is a failure.
fn peer_available() -> bool {
    let missing = if Command::new("php").arg("--version").output().is_err() {
        Some("php is not installed".to_owned())
    } else if !Path::new(SSP_WWW)
        .join("saml2/idp/SSOService.php")
        .is_file()
    {
        Some(format!("simplesamlphp is not installed ({SSP_WWW})"))
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{why} (required in CI; scripts/test.sh installs it)");
            }
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PHP single-quoted string literal.
fn php(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn php_bool(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The base64 body of a PEM certificate (what simplesamlphp's `certData` wants).
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

impl SamlIdp {
    /// Starts the IdP with `sps` and the [`default_users`]. `None` (test skipped) only
    /// outside CI when php or simplesamlphp is missing.
    pub fn start(sps: &[SamlSp]) -> Option<Self> {
        Self::start_with(sps, &default_users())
    }

    pub fn start_with(sps: &[SamlSp], users: &[SamlUser]) -> Option<Self> {
        if !peer_available() {
            return None;
        }
        let keys = KeyPair::generate("rolegate-test-idp");
        let dir = tempfile::tempdir().unwrap();
        for sub in [
            "config", "metadata", "cert", "data", "log", "tmp", "sessions",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let port = free_port();
        let base_url = format!("http://127.0.0.1:{port}");
        write_config(dir.path(), &base_url, &keys, sps, users);
        let log_path = dir.path().join("log/php-server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new("php")
                .args(["-S", &format!("127.0.0.1:{port}"), "-t", SSP_WWW])
                .env("SIMPLESAMLPHP_CONFIG_DIR", dir.path().join("config"))
                .env("PHP_CLI_SERVER_WORKERS", "4")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("spawn php -S")
        };
        let mut idp = Self {
            child: Some(child),
            entity_id: format!("{base_url}/saml2/idp/metadata.php"),
            base_url,
            keys,
            dir,
        };
        idp.wait_ready(&log_path);
        Some(idp)
    }

    fn wait_ready(&mut self, log_path: &Path) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let url = self.metadata_url();
        loop {
            if let Ok(body) = http_get(&url)
                && body.contains("IDPSSODescriptor")
            {
                return;
            }
            if std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                self.stop();
                panic!("simplesamlphp did not become ready at {url}; server log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn metadata_url(&self) -> String {
        format!("{}/saml2/idp/metadata.php", self.base_url)
    }

    /// The IdP's SAML 2.0 metadata XML (as a user would download it).
    pub async fn metadata_xml(&self) -> String {
        let response = reqwest::get(self.metadata_url()).await.unwrap();
        assert!(
            response.status().is_success(),
            "metadata: {}",
            response.status()
        );
        response.text().await.unwrap()
    }

    /// The SSO endpoint (HTTP-Redirect and IdP-initiated).
    pub fn sso_url(&self) -> String {
        format!("{}/saml2/idp/SSOService.php", self.base_url)
    }

    /// The server's log so far (PHP errors land here).
    pub fn log(&self) -> String {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.path().join("log").join(name)).unwrap_or_default()
        };
        format!("{}{}", read("php-server.log"), read("simplesamlphp.log"))
    }

    /// An IdP-initiated response for `sp_entity_id`, signing in as `user`: the base64
    /// `SAMLResponse` the IdP's auto-POST form carries.
    pub async fn idp_initiated_response(
        &self,
        sp_entity_id: &str,
        user: &str,
        password: &str,
    ) -> String {
        let url = format!(
            "{}?spentityid={}",
            self.sso_url(),
            percent_encoding::utf8_percent_encode(sp_entity_id, percent_encoding::NON_ALPHANUMERIC)
        );
        self.login_at(&url, user, password).await.saml_response
    }

    /// The response to an SP's AuthnRequest: `authn_request_url` is the IdP SSO URL
    /// with `SAMLRequest` (and `RelayState`, `SigAlg`, `Signature`) as the SP built it.
    pub async fn response_for_request(
        &self,
        authn_request_url: &str,
        user: &str,
        password: &str,
    ) -> PostedResponse {
        self.login_at(authn_request_url, user, password).await
    }

    /// Follows `url` to the login form, signs in, and reads the auto-POST form.
    pub async fn login_at(&self, url: &str, user: &str, password: &str) -> PostedResponse {
        self.try_login_at(url, user, password)
            .await
            .unwrap_or_else(|e| panic!("{e}\nIdP log:\n{}", self.log()))
    }

    pub async fn try_login_at(
        &self,
        url: &str,
        user: &str,
        password: &str,
    ) -> Result<PostedResponse, String> {
        let mut browser = Browser::new(&self.base_url);
        let mut page = browser.fetch(url, None).await;
        let mut hops = 0;
        while let Some(next) = page.location.clone() {
            hops += 1;
            if hops > 10 {
                return Err("too many redirects before the login form".into());
            }
            page = browser.fetch(&next, None).await;
        }
        let auth_state = form_field(&page.body, "AuthState").ok_or_else(|| {
            format!(
                "no login form (status {}): {}",
                page.status,
                page.body.chars().take(2000).collect::<String>()
            )
        })?;
        let login_url = format!("{}/module.php/core/loginuserpass.php", self.base_url);
        let mut page = browser
            .fetch(
                &login_url,
                Some(&[
                    ("username", user),
                    ("password", password),
                    ("AuthState", &auth_state),
                ]),
            )
            .await;
        let mut hops = 0;
        while let Some(next) = page.location.clone() {
            hops += 1;
            if hops > 10 {
                return Err("too many redirects after the login".into());
            }
            page = browser.fetch(&next, None).await;
        }
        let saml_response = form_field(&page.body, "SAMLResponse").ok_or_else(|| {
            format!(
                "no SAMLResponse form after the login (status {}): {}",
                page.status,
                page.body.chars().take(2000).collect::<String>()
            )
        })?;
        Ok(PostedResponse {
            action: form_action(&page.body).unwrap_or_default(),
            saml_response,
            relay_state: form_field(&page.body, "RelayState"),
        })
    }

    /// Stops the whole process group (PHP workers are forked children) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for SamlIdp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the IdP's auto-POST form sends to the SP.
#[derive(Clone, Debug)]
pub struct PostedResponse {
    /// The form's action (the SP's ACS URL).
    pub action: String,
    /// Base64, as the browser would post it.
    pub saml_response: String,
    pub relay_state: Option<String>,
}

impl PostedResponse {
    /// The decoded XML of the response.
    pub fn xml(&self) -> String {
        decode_response(&self.saml_response)
    }
}

/// Base64 `SAMLResponse` -> XML text.
pub fn decode_response(b64: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .unwrap(),
    )
    .unwrap()
}

/// XML text -> base64 `SAMLResponse`.
pub fn encode_response(xml: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the `<input name="{name}" value="...">` of an HTML form.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let value_at = tag.find("value=\"")? + "value=\"".len();
    let value_end = value_at + tag[value_at..].find('"')?;
    Some(html_unescape(&tag[value_at..value_end]))
}

fn form_action(html: &str) -> Option<String> {
    let at = html.find("action=\"")? + "action=\"".len();
    let end = at + html[at..].find('"')?;
    Some(html_unescape(&html[at..end]))
}

fn write_config(dir: &Path, base_url: &str, keys: &KeyPair, sps: &[SamlSp], users: &[SamlUser]) {
    let p = |sub: &str| dir.join(sub).display().to_string() + "/";
    std::fs::write(dir.join("cert/idp.key"), &keys.key_pem).unwrap();
    std::fs::write(dir.join("cert/idp.crt"), &keys.cert_pem).unwrap();
    let secret: String = (0..32)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect();
    let config = format!(
        r#"<?php
$config = [
    'baseurlpath' => {base},
    'certdir' => {cert},
    'loggingdir' => {log},
    'datadir' => {data},
    'tempdir' => {tmp},
    'metadatadir' => {metadata},
    'attributenamemapdir' => '/etc/simplesamlphp/attributemap/',
    'secretsalt' => {secret},
    'auth.adminpassword' => {secret},
    'technicalcontact_name' => 'Rolegate tests',
    'technicalcontact_email' => 'na@example.org',
    'timezone' => 'UTC',
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'trusted.url.domains' => ['127.0.0.1'],
    'enable.http_post' => false,
    'assertion.allowed_clock_skew' => 180,
    'debug' => ['saml' => false, 'backtraces' => true, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,
    'logging.level' => SimpleSAML\Logger::WARNING,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'statistics.out' => [],
    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'enable.adfs-idp' => false,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],
    'session.duration' => 8 * 3600,
    'session.datastore.timeout' => 4 * 3600,
    'session.state.timeout' => 3600,
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.lifetime' => 0,
    'session.cookie.path' => '/',
    'session.cookie.domain' => null,
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.savepath' => {sessions},
    'session.phpsession.httponly' => true,
    'session.authtoken.cookiename' => 'SimpleSAMLAuthToken',
    'language.available' => ['en'],
    'language.default' => 'en',
    'language.cookie.secure' => false,
    'language.cookie.samesite' => null,
    'theme.use' => 'default',
    'template.auto_reload' => false,
    'production' => true,
    'store.type' => 'phpsession',
    'authproc.idp' => [],
    'authproc.sp' => [],
];
"#,
        base = php(&format!("{base_url}/")),
        cert = php(&p("cert")),
        log = php(&p("log")),
        data = php(&p("data")),
        tmp = php(&p("tmp")),
        metadata = php(&p("metadata")),
        sessions = php(&p("sessions")),
        secret = php(&secret),
    );
    std::fs::write(dir.join("config/config.php"), config).unwrap();

    let mut auth = String::from(
        "<?php\n$config = [\n    'admin' => ['core:AdminPassword'],\n    'userpass' => [\n        'exampleauth:UserPass',\n",
    );
    for user in users {
        let mut attributes = user.attributes.clone();
        if !attributes.iter().any(|(name, _)| name == "uid") {
            attributes.insert(0, ("uid".to_owned(), vec![user.username.clone()]));
        }
        auth.push_str(&format!(
            "        {} => [\n",
            php(&format!("{}:{}", user.username, user.password))
        ));
        for (name, values) in attributes {
            let values: Vec<String> = values.iter().map(|v| php(v)).collect();
            auth.push_str(&format!(
                "            {} => [{}],\n",
                php(&name),
                values.join(", ")
            ));
        }
        auth.push_str("        ],\n");
    }
    auth.push_str("    ],\n];\n");
    std::fs::write(dir.join("config/authsources.php"), auth).unwrap();

    let hosted = format!(
        r#"<?php
$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'userpass',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'NameIDFormat' => {nameid},
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'authproc' => [
        10 => [
            'class' => 'saml:AttributeNameID',
            'attribute' => 'uid',
            'Format' => {nameid},
        ],
    ],
];
"#,
        nameid = php(NAMEID_UNSPECIFIED),
    );
    std::fs::write(dir.join("metadata/saml20-idp-hosted.php"), hosted).unwrap();

    let mut remote = String::from("<?php\n");
    for sp in sps {
        remote.push_str(&format!(
            "$metadata[{}] = [\n    'AssertionConsumerService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'Location' => {}]],\n    'NameIDFormat' => {},\n    'saml20.sign.response' => {},\n    'saml20.sign.assertion' => {},\n    'validate.authnrequest' => {},\n    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',\n",
            php(&sp.entity_id),
            php(&sp.acs_url),
            php(NAMEID_UNSPECIFIED),
            php_bool(sp.sign_response),
            php_bool(sp.sign_assertion),
            php_bool(sp.validate_authnrequest),
        ));
        let mut keys = Vec::new();
        if let Some(cert) = &sp.encryption_cert_pem {
            remote.push_str("    'assertion.encryption' => true,\n");
            keys.push(format!(
                "['type' => 'X509Certificate', 'encryption' => true, 'signing' => false, 'X509Certificate' => {}]",
                php(&pem_body(cert))
            ));
        }
        if let Some(cert) = &sp.signing_cert_pem {
            keys.push(format!(
                "['type' => 'X509Certificate', 'encryption' => false, 'signing' => true, 'X509Certificate' => {}]",
                php(&pem_body(cert))
            ));
        }
        if !keys.is_empty() {
            remote.push_str(&format!("    'keys' => [{}],\n", keys.join(", ")));
        }
        remote.push_str("];\n");
    }
    std::fs::write(dir.join("metadata/saml20-sp-remote.php"), remote).unwrap();
}

/// A tiny blocking HTTP/1.0 GET for readiness polling from sync code.
fn http_get(url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(80);
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut stream =
        std::net::TcpStream::connect((host.as_str(), port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// An unsigned HTTP-Redirect AuthnRequest from `sp` to the IdP at `sso_url`: the URL
/// to send the browser to, and the request's ID (what InResponseTo must be).
pub fn authn_request_url(sso_url: &str, sp: &SamlSp, relay_state: &str) -> (String, String) {
    let id = format!("_req{}", hex::encode(rand::random::<[u8; 12]>()));
    let request = samael::schema::AuthnRequest {
        id: id.clone(),
        version: "2.0".into(),
        issue_instant: chrono::Utc::now(),
        destination: Some(sso_url.to_owned()),
        issuer: Some(samael::schema::Issuer {
            value: Some(sp.entity_id.clone()),
            ..Default::default()
        }),
        assertion_consumer_service_url: Some(sp.acs_url.clone()),
        protocol_binding: Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST".into()),
        ..Default::default()
    };
    let url = request.redirect(relay_state).unwrap().unwrap();
    (url.to_string(), id)
}

/// Expectations for `sp` against `idp` at `now`, 60 s skew.
pub fn expectations<'a>(
    idp: &'a rolegate::idp::saml::IdpMetadata,
    sp: &'a SamlSp,
    in_response_to: rolegate::idp::saml::InResponseTo<'a>,
    now: chrono::DateTime<chrono::Utc>,
) -> rolegate::idp::saml::Expectations<'a> {
    rolegate::idp::saml::Expectations {
        idp,
        audience: &sp.entity_id,
        recipient: &sp.acs_url,
        in_response_to,
        now,
        clock_skew: Duration::from_secs(60),
        decryption_key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolegate::idp::saml::{InResponseTo, parse_idp_metadata, verify_response};

    const SP_ENTITY: &str = "http://rolegate.test/saml/corp/metadata";
    const SP_ACS: &str = "http://rolegate.test/saml/corp/acs";

    #[tokio::test]
    async fn metadata_of_the_idp_names_its_entity_id_and_generated_certificate() {
        let sp = SamlSp::new(SP_ENTITY, SP_ACS);
        let Some(idp) = SamlIdp::start(&[sp]) else {
            return;
        };
        let metadata = parse_idp_metadata(&idp.metadata_xml().await).unwrap();
        assert_eq!(metadata.entity_id, idp.entity_id);
        assert_eq!(metadata.signing_certs, vec![idp.keys.cert_der.clone()]);
        assert_eq!(
            metadata.sso_redirect_url.as_deref(),
            Some(idp.sso_url().as_str())
        );
    }

    #[tokio::test]
    async fn an_idp_initiated_response_verifies_with_multi_valued_attributes() {
        let sp = SamlSp::new(SP_ENTITY, SP_ACS);
        let Some(idp) = SamlIdp::start(std::slice::from_ref(&sp)) else {
            return;
        };
        let metadata = parse_idp_metadata(&idp.metadata_xml().await).unwrap();
        let response = idp
            .idp_initiated_response(&sp.entity_id, "alice", "alice-pass")
            .await;
        let now = chrono::Utc::now();
        let verified = verify_response(
            &response,
            &expectations(&metadata, &sp, InResponseTo::IdpInitiatedOnly, now),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", decode_response(&response)));
        assert_eq!(verified.name_id, "alice");
        assert_eq!(verified.issuer, idp.entity_id);
        assert_eq!(verified.name_id_format.as_deref(), Some(NAMEID_UNSPECIFIED));
        assert_eq!(
            verified.attributes["groups"],
            vec!["developers".to_owned(), "admins".to_owned()]
        );
        assert_eq!(verified.attributes[AWS_ROLE_ATTRIBUTE].len(), 2);
        assert_eq!(
            verified.attributes["email"],
            vec!["alice@corp.example".to_owned()]
        );
        assert!(verified.in_response_to.is_none());
        assert!(verified.not_on_or_after > now);
        assert!(verified.authn_instant.is_some());

        // The same response, for another audience / recipient, is refused.
        let other = SamlSp::new("http://other.test/sp", SP_ACS);
        let err = verify_response(
            &response,
            &expectations(&metadata, &other, InResponseTo::IdpInitiatedOnly, now),
        )
        .unwrap_err();
        assert_eq!(err.code(), "wrong_audience");
        // An SP that expected an answer to its own request refuses it.
        let err = verify_response(
            &response,
            &expectations(&metadata, &sp, InResponseTo::Expected("_mine"), now),
        )
        .unwrap_err();
        assert_eq!(err.code(), "unknown_in_response_to");
    }

    #[tokio::test]
    async fn an_sp_initiated_response_answers_the_request_and_keeps_the_relay_state() {
        let sp = SamlSp::new(SP_ENTITY, SP_ACS);
        let Some(idp) = SamlIdp::start(std::slice::from_ref(&sp)) else {
            return;
        };
        let metadata = parse_idp_metadata(&idp.metadata_xml().await).unwrap();
        let (url, request_id) = authn_request_url(&idp.sso_url(), &sp, "deep/link?x=1");
        let posted = idp.response_for_request(&url, "bob", "bob-pass").await;
        assert_eq!(posted.action, SP_ACS);
        assert_eq!(posted.relay_state.as_deref(), Some("deep/link?x=1"));
        let now = chrono::Utc::now();
        let verified = verify_response(
            &posted.saml_response,
            &expectations(&metadata, &sp, InResponseTo::Expected(&request_id), now),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", posted.xml()));
        assert_eq!(verified.name_id, "bob");
        assert_eq!(
            verified.in_response_to.as_deref(),
            Some(request_id.as_str())
        );
        assert_eq!(verified.attributes["groups"], vec!["developers".to_owned()]);
        let err = verify_response(
            &posted.saml_response,
            &expectations(&metadata, &sp, InResponseTo::IdpInitiatedOnly, now),
        )
        .unwrap_err();
        assert_eq!(err.code(), "unknown_in_response_to");
    }

    #[tokio::test]
    async fn an_encrypted_assertion_is_decrypted_with_the_sp_key() {
        let sp_keys = KeyPair::generate("rolegate-test-sp");
        let mut sp = SamlSp::new(SP_ENTITY, SP_ACS);
        sp.encryption_cert_pem = Some(sp_keys.cert_pem.clone());
        let Some(idp) = SamlIdp::start(std::slice::from_ref(&sp)) else {
            return;
        };
        let metadata = parse_idp_metadata(&idp.metadata_xml().await).unwrap();
        let response = idp
            .idp_initiated_response(&sp.entity_id, "alice", "alice-pass")
            .await;
        assert!(decode_response(&response).contains("EncryptedAssertion"));
        let now = chrono::Utc::now();
        let mut expect = expectations(&metadata, &sp, InResponseTo::IdpInitiatedOnly, now);
        let err = verify_response(&response, &expect).unwrap_err();
        assert_eq!(err.code(), "decryption_failed", "no key configured");
        expect.decryption_key = Some(sp_keys.key_pem.as_bytes());
        let verified = verify_response(&response, &expect)
            .unwrap_or_else(|e| panic!("{e}\n{}", decode_response(&response)));
        assert_eq!(verified.name_id, "alice");
        assert_eq!(verified.attributes["groups"].len(), 2);
        let other = KeyPair::generate("another-sp");
        expect.decryption_key = Some(other.key_pem.as_bytes());
        assert_eq!(
            verify_response(&response, &expect).unwrap_err().code(),
            "decryption_failed"
        );
    }
}
