//! The note form of a domain's page, and `POST /domains/{domain}/notes` that it posts to
//! (protected like every write): the note is added, then the browser goes back to the
//! incident on the page.

use super::domain::not_found;
use super::{escape, page_language, page_start};
use crate::http::api::Scope;
use crate::http::incidents::{NoteError, NoteFields, add_note, first_response};
use crate::http::times::utc;
use crate::http::{AppState, PageLanguage};
use crate::i18n::{Language, Phrase};
use crate::state::{Channel, IncidentRecord};
use axum::Extension;
use axum::extract::{Form, Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

/// The form adding a note to one of `incidents`.
pub(super) fn note_form(
    page: &mut String,
    name: &str,
    incidents: &[IncidentRecord],
    language: Language,
) {
    let t = |p: Phrase| p.text(language);
    let _ = write!(
        page,
        "<h3>{}</h3><form class=\"note\" id=\"note-form\" method=\"post\" action=\"/domains/{}/notes\"><label>{}<select name=\"incident\" required>",
        t(Phrase::AddNote),
        escape(name),
        t(Phrase::Incident)
    );
    for incident in incidents {
        let _ = write!(
            page,
            "<option value=\"{}\">#{} {} {} ({}, {} UTC)</option>",
            incident.id,
            incident.id,
            escape(&incident.check),
            escape(&incident.code),
            incident.state,
            utc(incident.opened_at)
        );
    }
    let _ = write!(
        page,
        "</select></label><label>{}<select name=\"channel\">",
        t(Phrase::Channel)
    );
    for channel in Channel::ALL {
        let _ = write!(page, "<option>{}</option>", channel.as_str());
    }
    let _ = write!(
        page,
        "</select></label><label>{}<input name=\"ticket\" maxlength=\"100\"></label>\
         <label>{}<input name=\"who\" maxlength=\"100\"></label>\
         <label>{}<input name=\"first_response_at\" maxlength=\"40\" placeholder=\"2024-05-01 10:30 +08:00\"></label>\
         <label class=\"wide\">{}<textarea name=\"text\" required maxlength=\"4000\"></textarea></label>\
         <span class=\"flags\"><label><input type=\"checkbox\" name=\"registrar\" value=\"yes\"> {}</label> \
         <label><input type=\"checkbox\" name=\"dns_provider\" value=\"yes\"> {}</label></span>\
         <span><button type=\"submit\">{}</button></span></form>",
        t(Phrase::Ticket),
        t(Phrase::Who),
        t(Phrase::FirstResponse),
        t(Phrase::StepsTaken),
        t(Phrase::RegistrarInvolved),
        t(Phrase::DnsProviderInvolved),
        t(Phrase::AddNote),
    );
}

/// The note form as posted (every field a string; empty means absent).
#[derive(Debug, Deserialize)]
pub(crate) struct NoteForm {
    incident: String,
    channel: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    who: String,
    #[serde(default)]
    first_response_at: String,
    text: String,
    #[serde(default)]
    registrar: Option<String>,
    #[serde(default)]
    dns_provider: Option<String>,
}

/// `POST /domains/{domain}/notes`: adds the note, then back to the incident on the page.
pub(crate) async fn add_note_form(
    AxumState(state): AxumState<Arc<AppState>>,
    Extension(forced): Extension<PageLanguage>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Result<Form<NoteForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let language = page_language(forced.0, &headers);
    let name = crate::dns::names::lookup_name(&name);
    // Another shard's domain takes notes too (from its fleet-scope page): notes are rows of
    // the shared store, and `add_note` checks that the incident is this domain's.
    let watched = state.monitor.domain(&name).is_some();
    let shared = state.state.store.as_ref().is_some_and(|s| s.is_shared());
    if !watched && !shared {
        return not_found(&name, language);
    }
    let back = if watched { "" } else { Scope::Fleet.query() };
    let refused = |status: StatusCode, message: String| {
        let mut page = page_start("maildrift", language, "");
        let _ = write!(
            page,
            "<h1>{}</h1><p>{}</p><p><a href=\"/domains/{n}{back}\">← {n}</a></p></body></html>",
            Phrase::NoteNotAdded.text(language),
            escape(&message),
            n = escape(&name)
        );
        (status, Html(page)).into_response()
    };
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return refused(rejection.status(), rejection.body_text()),
    };
    let fields = form
        .incident
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("{:?} is not an incident id", form.incident))
        .and_then(|id| {
            let at = first_response(&serde_json::Value::String(form.first_response_at.clone()))?;
            let fields = NoteFields::new(
                &form.channel,
                Some(&form.ticket),
                Some(&form.who),
                &form.text,
                at,
                (form.registrar.is_some(), form.dns_provider.is_some()),
            )?;
            Ok((id, fields))
        });
    let (id, fields) = match fields {
        Ok(parsed) => parsed,
        Err(message) => return refused(StatusCode::BAD_REQUEST, message),
    };
    match add_note(&state, id, Some(&name), fields).await {
        Ok((_, note)) => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                match back {
                    "" => format!("/domains/{name}?note={}#incident-{id}", note.id),
                    _ => format!("/domains/{name}{back}&note={}#incident-{id}", note.id),
                },
            )],
        )
            .into_response(),
        Err(NoteError::NotFound(id)) => {
            refused(StatusCode::NOT_FOUND, format!("no incident {id} of {name}"))
        }
        Err(NoteError::Unavailable) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            Phrase::StoreUnavailable.text(language).to_owned(),
        ),
        Err(NoteError::Failed(message)) => refused(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}
