//! The People pages: everyone seen signing in recently (any source) and what they
//! can reach and why (`/admin/people`, `/admin/people/{source}/{subject}`), and the
//! built-in directory's users and groups (`/admin/directory/users/{user}`,
//! `/admin/directory/groups`). Reading only: every change (create, edit, password, second
//! factor, lock, membership, ending sign-ins) is a form or button that
//! `static/admin.js` sends to the admin API, whose lock-out guard it confirms.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::{AdminPage, Layout, Section, render, unavailable};
use crate::iam::UserName;
use crate::idp::directory::DIRECTORY_SOURCE_ID;
use crate::idp::identity::Identity;
use crate::mapping::Evaluation;
use crate::service::device::TerminalSignIn;
use crate::service::rulesets::RulesetError;
use crate::service::sessions::SessionSummary;
use crate::store::{Group, StoreError, User};
use crate::web::AppState;
use crate::web::page::PageError;

/// How many recent sign-ins the list shows.
const RECENT_SHOWN: i64 = 500;

/// A path segment: everything but unreserved characters percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/people", web::get().to(people))
        .route("/people/{source}/{subject}", web::get().to(person))
        .route("/directory/users/{user}", web::get().to(directory_user))
        .route("/directory/groups", web::get().to(directory_groups));
}

fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// The person page of `source`'s person `subject`.
fn person_href(source: &str, subject: &str) -> String {
    format!("/admin/people/{}/{}", segment(source), segment(subject))
}

/// The page of the directory user `user_name`.
fn user_href(user_name: &str) -> String {
    format!("/admin/directory/users/{}", segment(user_name))
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn when_unix(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .map(when)
        .unwrap_or_default()
}

fn not_found(title: &str, message: impl Into<String>) -> PageError {
    PageError::new(StatusCode::NOT_FOUND, title, message).next("/admin/people", "People")
}

/// A person's live portal sessions and terminal sign-ins, with the API address
/// that ends them all (`templates/admin/sign_ins.html`).
struct SignIns {
    portal: Vec<SessionSummary>,
    terminal: Vec<TerminalSignIn>,
    revoke: String,
    who: String,
}

impl SignIns {
    async fn of(state: &AppState, source: &str, user_name: &str) -> Result<Self, PageError> {
        let portal = state
            .sessions
            .list_for_user(source, user_name)
            .await
            .map_err(unavailable)?;
        let terminal = state
            .device
            .list_for_user(source, user_name)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            portal,
            terminal,
            revoke: format!(
                "{}/people/{}/{}/sessions",
                crate::web::admin::PREFIX,
                segment(source),
                segment(user_name)
            ),
            who: format!("{source}:{user_name}"),
        })
    }

    fn at(&self, seconds: &i64) -> String {
        when_unix(*seconds)
    }
}

// ---- /admin/people ----

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

struct Seen {
    href: String,
    source: String,
    user_name: String,
    display_name: String,
    groups: Vec<String>,
    at: String,
}

struct DirectoryUser {
    href: String,
    user: User,
}

#[derive(Template)]
#[template(path = "admin/people.html")]
struct PeoplePage {
    layout: Layout,
    q: String,
    seen: Vec<Seen>,
    users: Vec<DirectoryUser>,
}

/// Whether any of `texts` contains the lowercase `needle` (an empty one matches).
fn matches<'a>(needle: &str, texts: impl IntoIterator<Item = &'a str>) -> bool {
    needle.is_empty()
        || texts
            .into_iter()
            .any(|text| text.to_lowercase().contains(needle))
}

async fn people(
    state: web::Data<AppState>,
    admin: AdminPage,
    search: web::Query<Search>,
) -> Result<HttpResponse, PageError> {
    let q = search.into_inner().q.trim().to_owned();
    let needle = q.to_lowercase();
    let seen = state
        .store
        .recent_sign_ins(RECENT_SHOWN)
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter_map(|sign_in| {
            let identity = serde_json::from_value::<Identity>(sign_in.identity).ok()?;
            let texts = [
                identity.user_name.as_str(),
                identity.display_name.as_str(),
                identity.email.as_deref().unwrap_or(""),
                sign_in.source_id.as_str(),
            ];
            matches(&needle, texts).then(|| Seen {
                href: person_href(&sign_in.source_id, &sign_in.subject),
                source: sign_in.source_id,
                user_name: sign_in.user_name,
                display_name: identity.display_name,
                groups: identity.groups,
                at: when(sign_in.signed_in_at),
            })
        })
        .collect();
    let users = state
        .store
        .list_users(DIRECTORY_SOURCE_ID)
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|user| {
            let texts = [
                user.user_name.as_str(),
                user.display_name.as_str(),
                user.email.as_deref().unwrap_or(""),
            ];
            matches(&needle, texts)
        })
        .map(|user| DirectoryUser {
            href: user_href(user.user_name.as_str()),
            user,
        })
        .collect();
    render(&PeoplePage {
        layout: admin.layout(Section::People, "People"),
        q,
        seen,
        users,
    })
}

// ---- /admin/people/{source}/{subject} ----

#[derive(Template)]
#[template(path = "admin/person.html")]
struct PersonPage {
    layout: Layout,
    identity: Identity,
    subject: String,
    evaluation: Evaluation,
    /// The directory user page, for a directory person.
    directory: Option<String>,
    sign_ins: SignIns,
}

impl PersonPage {
    fn duration(seconds: &Option<i64>) -> String {
        match seconds {
            Some(seconds) if seconds % 3600 == 0 => format!("{} h", seconds / 3600),
            Some(seconds) => format!("{} min", seconds / 60),
            None => "the role's maximum".into(),
        }
    }
}

async fn person(
    state: web::Data<AppState>,
    admin: AdminPage,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (source, subject) = path.into_inner();
    let (identity, evaluation) = match state.rulesets.person(&source, &subject).await {
        Ok(found) => found,
        Err(RulesetError::NotFound(message)) => {
            return Err(not_found("Person not seen", format!("There is {message}.")));
        }
        Err(error) => return Err(unavailable(error)),
    };
    let sign_ins = SignIns::of(&state, &identity.source_id, &identity.user_name).await?;
    let title = if identity.display_name.is_empty() {
        identity.user_name.clone()
    } else {
        identity.display_name.clone()
    };
    render(&PersonPage {
        layout: admin.layout(Section::People, title),
        directory: (identity.source_id == DIRECTORY_SOURCE_ID)
            .then(|| user_href(&identity.user_name)),
        identity,
        subject,
        evaluation,
        sign_ins,
    })
}

// ---- /admin/directory/users/{user} ----

struct Membership {
    name: String,
    /// The API address of this membership (PUT adds, DELETE removes).
    api: String,
}

#[derive(Template)]
#[template(path = "admin/directory_user.html")]
struct DirectoryUserPage {
    layout: Layout,
    user: User,
    /// The user's name in API paths.
    api: String,
    groups: Vec<Membership>,
    /// Groups the user is not in, for "add to group".
    other_groups: Vec<Membership>,
    /// The person page, when the user signed in recently.
    seen: Option<String>,
    /// Whether this user is the signed-in admin.
    is_self: bool,
    sign_ins: SignIns,
}

fn membership_api(group: &str, user_name: &str) -> String {
    format!(
        "{}/directory/groups/{}/members/{}",
        crate::web::admin::PREFIX,
        segment(group),
        segment(user_name)
    )
}

async fn directory_user(
    state: web::Data<AppState>,
    admin: AdminPage,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let raw = path.into_inner();
    let missing = || {
        not_found(
            "No such user",
            format!("The built-in directory has no user {raw:?}."),
        )
    };
    let Ok(name) = UserName::parse(&raw) else {
        return Err(missing());
    };
    let store = state.store.as_ref();
    let user = match store.get_user(DIRECTORY_SOURCE_ID, &name).await {
        Ok(user) => user,
        Err(StoreError::NotFound { .. }) => return Err(missing()),
        Err(error) => return Err(unavailable(error)),
    };
    let user_name = user.user_name.to_string();
    let member_of: Vec<Group> = store
        .groups_for_user(DIRECTORY_SOURCE_ID, &name)
        .await
        .map_err(unavailable)?;
    let membership = |group: &Group| Membership {
        name: group.name.to_string(),
        api: membership_api(group.name.as_str(), &user_name),
    };
    let other_groups = store
        .list_groups(DIRECTORY_SOURCE_ID)
        .await
        .map_err(unavailable)?
        .iter()
        .filter(|group| !member_of.iter().any(|m| m.name == group.name))
        .map(membership)
        .collect();
    let seen = store
        .recent_sign_ins(crate::service::entitlements::RECENT_SIGN_INS_LIMIT)
        .await
        .map_err(unavailable)?
        .into_iter()
        .find(|s| {
            s.source_id == DIRECTORY_SOURCE_ID && s.user_name.eq_ignore_ascii_case(&user_name)
        })
        .map(|s| person_href(&s.source_id, &s.subject));
    let sign_ins = SignIns::of(&state, DIRECTORY_SOURCE_ID, &user_name).await?;
    render(&DirectoryUserPage {
        layout: admin.layout(Section::People, format!("Directory user {user_name}")),
        api: format!(
            "{}/directory/users/{}",
            crate::web::admin::PREFIX,
            segment(&user_name)
        ),
        groups: member_of.iter().map(membership).collect(),
        other_groups,
        seen,
        is_self: admin
            .actor
            .eq_ignore_ascii_case(&format!("{DIRECTORY_SOURCE_ID}:{user_name}")),
        sign_ins,
        user,
    })
}

// ---- /admin/directory/groups ----

struct Member {
    user_name: String,
    href: String,
    /// DELETE removes the member.
    api: String,
}

struct GroupCard {
    group: Group,
    members: Vec<Member>,
    /// Users not in the group: (user name, API address that adds them).
    others: Vec<(String, String)>,
    /// DELETE deletes the group.
    api: String,
}

#[derive(Template)]
#[template(path = "admin/directory_groups.html")]
struct GroupsPage {
    layout: Layout,
    groups: Vec<GroupCard>,
}

async fn directory_groups(
    state: web::Data<AppState>,
    admin: AdminPage,
) -> Result<HttpResponse, PageError> {
    let store = state.store.as_ref();
    let users = store
        .list_users(DIRECTORY_SOURCE_ID)
        .await
        .map_err(unavailable)?;
    let mut groups = Vec::new();
    for group in store
        .list_groups(DIRECTORY_SOURCE_ID)
        .await
        .map_err(unavailable)?
    {
        let names = store
            .group_members(DIRECTORY_SOURCE_ID, &group.name)
            .await
            .map_err(unavailable)?;
        let members = names
            .iter()
            .map(|name| Member {
                user_name: name.to_string(),
                href: user_href(name.as_str()),
                api: membership_api(group.name.as_str(), name.as_str()),
            })
            .collect();
        let others = users
            .iter()
            .filter(|user| !names.contains(&user.user_name))
            .map(|user| {
                (
                    user.user_name.to_string(),
                    membership_api(group.name.as_str(), user.user_name.as_str()),
                )
            })
            .collect();
        groups.push(GroupCard {
            api: format!(
                "{}/directory/groups/{}",
                crate::web::admin::PREFIX,
                segment(group.name.as_str())
            ),
            group,
            members,
            others,
        });
    }
    render(&GroupsPage {
        layout: admin.layout(Section::People, "Directory groups"),
        groups,
    })
}
