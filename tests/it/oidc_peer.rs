//! The real OpenID Connect provider of the tests (npm `oidc-provider`,
//! tests/peers/oidc) as a child process, and a minimal cookie-keeping browser to
//! drive it (and Rolegate) over plain HTTP. Shared by the web identity and the
//! portal OIDC sign-in tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The redirect URI registered for every peer client (nothing listens there).
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";

pub fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oidc")
}

// ---------------------------------------------------------------------------
// The OIDC peer process
// ---------------------------------------------------------------------------

/// `node tests/peers/oidc/server.mjs`, in its own process group, stopped on drop.
pub struct OidcPeer {
    child: Option<Child>,
    pub issuer: String,
    pub port: u16,
    pub stderr: Arc<Mutex<String>>,
    /// Extra command-line arguments, kept for restarts.
    args: Vec<String>,
}

impl OidcPeer {
    /// Starts the peer on a free port, signing with `keys` (e.g. "a" or "b,a").
    /// `None` (the test is skipped) only outside CI when Node or the npm packages
    /// are missing; in CI (`CI=true`) that is a failure.
    pub fn start(keys: &str) -> Option<Self> {
        Self::start_with(keys, &[])
    }

    /// [`OidcPeer::start`] with extra arguments, e.g. `["--redirect-uris", uri]`.
    pub fn start_with(keys: &str, args: &[&str]) -> Option<Self> {
        let missing = if Command::new("node").arg("--version").output().is_err() {
            Some("node is not installed".to_owned())
        } else if !peer_dir().join("node_modules/oidc-provider").is_dir() {
            Some(format!(
                "the OIDC peer is not installed: run `npm ci --prefix {}`",
                peer_dir().display()
            ))
        } else {
            None
        };
        if let Some(why) = missing {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{why} (required in CI)");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        Some(Self::start_on(0, keys, &args))
    }

    fn start_on(port: u16, keys: &str, args: &[String]) -> Self {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("node")
            .arg(peer_dir().join("server.mjs"))
            .args(["--port", &port.to_string(), "--keys", keys])
            .args(args)
            .current_dir(peer_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn node");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&collected);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after the ready line: a closed pipe would kill the peer.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut peer = Self {
            child: Some(child),
            issuer: String::new(),
            port: 0,
            stderr: collected,
            args: args.to_vec(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(issuer) = line.strip_prefix("oidc-peer ready: ") {
                        peer.issuer = issuer.trim().to_owned();
                        peer.port = issuer
                            .trim()
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.parse().ok())
                            .expect("port in issuer");
                        return peer;
                    }
                }
                Err(_) => {
                    peer.stop();
                    panic!(
                        "the OIDC peer did not become ready; stderr:\n{}",
                        peer.stderr.lock().unwrap()
                    );
                }
            }
        }
    }

    /// Stops the whole process group and waits for it.
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
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts on the same port (same issuer) with another key list.
    pub fn restart(&mut self, keys: &str) {
        self.stop();
        let fresh = Self::start_on(self.port, keys, &self.args);
        assert_eq!(fresh.issuer, self.issuer);
        *self = fresh;
    }

    /// The IAM OIDC provider URL form: issuer without scheme (condition-key prefix).
    pub fn host_path(&self) -> &str {
        self.issuer.trim_start_matches("http://")
    }

    /// How often the discovery document and the JWKS were fetched since start.
    pub async fn stats(&self) -> (u64, u64) {
        let stats: Value = reqwest::get(format!("{}/_test/stats", self.issuer))
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json");
        (
            stats["discovery"].as_u64().unwrap(),
            stats["jwks"].as_u64().unwrap(),
        )
    }

    /// An ID token from the authorization code flow (PKCE), signing in as `user`.
    pub async fn id_token(&self, client_id: &str, user: &str, password: &str) -> String {
        self.try_id_token(client_id, user, password)
            .await
            .unwrap_or_else(|e| panic!("{e}; peer stderr:\n{}", self.stderr.lock().unwrap()))
    }

    pub async fn try_id_token(
        &self,
        client_id: &str,
        user: &str,
        password: &str,
    ) -> Result<String, String> {
        let mut browser = Browser::new(&self.issuer);
        let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let auth = format!(
            "{}/auth?{}",
            self.issuer,
            serde_urlencoded::to_string([
                ("client_id", client_id),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid"),
                ("nonce", &nonce),
                ("state", "st"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .unwrap()
        );
        // /auth → login interaction.
        let login = browser.get(&auth).await?;
        let uid = login.rsplit('/').next().unwrap_or_default().to_owned();
        let resume = browser
            .post(
                &format!("{}/interaction/{uid}/login", self.issuer),
                &[("login", user), ("password", password)],
            )
            .await?;
        // Resume → consent interaction → confirm → resume → redirect with the code.
        let consent = browser.get(&resume).await?;
        let uid = consent.rsplit('/').next().unwrap_or_default().to_owned();
        let resume = browser
            .post(&format!("{}/interaction/{uid}/confirm", self.issuer), &[])
            .await?;
        let callback = browser.get(&resume).await?;
        let callback = reqwest::Url::parse(&callback).map_err(|e| e.to_string())?;
        let code = callback
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("no code in {callback}"))?;
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(format!("{client_id}-secret")))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        body["id_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no id_token in {body}"))
    }
}

impl Drop for OidcPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal browser: no automatic redirects, a cookie jar keyed by name.
pub struct Browser {
    client: reqwest::Client,
    origin: String,
    pub cookies: BTreeMap<String, String>,
}

/// One response as a [`Browser`] saw it.
pub struct Page {
    pub status: u16,
    /// The redirect target, made absolute.
    pub location: Option<String>,
    pub body: String,
}

impl Browser {
    pub fn new(origin: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            origin: origin.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Stores the cookies a response sets.
    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let value = value.to_str().unwrap_or_default();
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((name, val)) = pair.split_once('=') {
                let expired = value
                    .to_ascii_lowercase()
                    .contains("expires=thu, 01 jan 1970");
                if val.is_empty() || expired {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), val.trim().to_owned());
                }
            }
        }
    }

    /// Stores cookies and returns the absolute redirect target (303/302 expected).
    fn absorb(&mut self, response: reqwest::Response) -> Result<String, String> {
        self.keep_cookies(&response);
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| format!("expected a redirect, got {status}"))?;
        let base = reqwest::Url::parse(&self.origin).map_err(|e| e.to_string())?;
        Ok(base.join(&location).map_err(|e| e.to_string())?.to_string())
    }

    /// Any response: status, absolute redirect target, body.
    pub async fn fetch(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> Page {
        let url = reqwest::Url::parse(&self.origin)
            .and_then(|base| base.join(url))
            .expect("URL");
        let request = match form {
            Some(form) => self.client.post(url).form(form),
            None => self.client.get(url),
        };
        let response = request
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("request");
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| reqwest::Url::parse(&self.origin).ok()?.join(l).ok())
            .map(|u| u.to_string());
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> Result<String, String> {
        let response = self
            .client
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        self.absorb(response)
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Result<String, String> {
        let response = self
            .client
            .post(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        self.absorb(response)
    }
}
