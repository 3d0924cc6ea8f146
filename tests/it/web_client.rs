//! A browser-like HTTP client for the portal tests: keeps cookies with their paths
//! (console cookies are scoped to `/console/<id>`), never follows redirects, and
//! signs in through the directory form. Plus the small page helpers those tests share.

use rolegate::seed;

use crate::helpers::TestStore;

/// A browser-like client that keeps cookies with their paths and never follows
/// redirects.
pub(crate) struct Browser {
    base: String,
    client: reqwest::Client,
    /// (name, path, value)
    pub(crate) cookies: Vec<(String, String, String)>,
    /// Sent with every request (say `X-Forwarded-For` behind a trusted proxy).
    headers: Vec<(String, String)>,
}

/// One response, read to the end.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) body: String,
    /// The raw `Set-Cookie` headers.
    pub(crate) set_cookies: Vec<String>,
    pub(crate) headers: reqwest::header::HeaderMap,
}

impl Page {
    /// Whether the response sets `cookie` to a non-empty value.
    pub(crate) fn sets(&self, cookie: &str) -> bool {
        self.set_cookies
            .iter()
            .any(|c| c.starts_with(&format!("{cookie}=")) && !c.starts_with(&format!("{cookie}=;")))
    }
}

/// RFC 6265 path matching.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

impl Browser {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// A browser on `base` over a prepared HTTP client (one that trusts a test
    /// certificate, or binds a source address); it must not follow redirects.
    pub(crate) fn with_client(base: &str, client: reqwest::Client) -> Self {
        Self {
            base: base.to_owned(),
            client,
            cookies: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// This client, sending `name: value` with every request.
    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", self.cookie_header(path));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    /// The `Cookie` header a browser would send to `path` (query ignored).
    pub(crate) fn cookie_header(&self, path: &str) -> String {
        let path = path.split('?').next().unwrap();
        self.cookies
            .iter()
            .filter(|(_, p, _)| path_matches(p, path))
            .map(|(k, _, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The value of the first kept cookie called `name`, whatever its path.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// Keeps `name=value` for `path`, replacing any cookie of that name and path.
    pub(crate) fn set_cookie(&mut self, name: &str, path: &str, value: &str) {
        self.cookies.retain(|(n, p, _)| !(n == name && p == path));
        self.cookies
            .push((name.to_owned(), path.to_owned(), value.to_owned()));
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for raw in &set_cookies {
            let mut parts = raw.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let path = parts
                .find_map(|p| p.strip_prefix("Path="))
                .unwrap_or("/")
                .to_owned();
            self.cookies.retain(|(n, p, _)| !(n == name && *p == path));
            if !value.is_empty() && !raw.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), path, value.to_owned()));
            }
        }
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        Page {
            status,
            location,
            body: response.text().await.unwrap(),
            set_cookies,
            headers,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .request(reqwest::Method::POST, path)
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    /// Posts the directory sign-in form (reading its CSRF token first); returns the
    /// response to the post.
    pub(crate) async fn sign_in(&mut self, user: &str, password: &str, return_to: &str) -> Page {
        let form = self
            .get(&format!("/signin?return_to={}", url_encode(return_to)))
            .await;
        assert_eq!(form.status, 200);
        let csrf = hidden(&form.body, "csrf");
        self.post(
            "/signin/directory",
            &[
                ("csrf", &csrf),
                ("username", user),
                ("password", password),
                ("return_to", return_to),
            ],
        )
        .await
    }
}

/// `value` encoded for a query string (`application/x-www-form-urlencoded`).
pub(crate) fn url_encode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).unwrap()[2..].to_owned()
}

/// The value of a form field with `name="…" value="…"`.
pub(crate) fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {body}"))
        + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_owned()
}

/// The value of `export NAME="…"` on an "Access keys" page.
pub(crate) fn exported(body: &str, name: &str) -> String {
    let marker = format!("export {name}=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_owned()
}

/// The export lines of an "Access keys" page: (key id, secret, token).
pub(crate) fn exported_keys(body: &str) -> (String, String, String) {
    (
        exported(body, "AWS_ACCESS_KEY_ID"),
        exported(body, "AWS_SECRET_ACCESS_KEY"),
        exported(body, "AWS_SESSION_TOKEN"),
    )
}

/// The password of a demo directory user.
pub(crate) fn password_of(user: &str) -> &'static str {
    seed::DEMO_SIGN_INS
        .iter()
        .find(|(u, _)| *u == user)
        .expect("demo user")
        .1
}

/// Rolegate's state on `db` with the demo seed.
pub(crate) async fn seeded(db: &TestStore) -> rolegate::web::AppState {
    let state = crate::helpers::app_state(db.store.clone()).await;
    seed::seed_demo(state.store.as_ref()).await.unwrap();
    state
}
