//! `hearth appreciate TEXT`: a small, specific thank-you.

use anyhow::Result;
use serde_json::json;

use crate::args::AppreciateArgs;
use crate::render;
use crate::session::Session;

pub fn run(session: &Session, args: AppreciateArgs) -> Result<()> {
    let text = super::text_argument(
        session,
        args.text,
        "What did you appreciate?",
        "appreciation",
    )?;
    let mut profile = session.open()?;
    let me = profile.person_id().clone();
    let (id, partner) = profile.write(|doc| {
        let id = doc.add_appreciation(&me, &text, render::now())?;
        session.saw_checkin(doc, &me);
        let partner = doc
            .people()
            .into_iter()
            .find(|p| p.id != me)
            .map(|p| p.name);
        Ok((id, partner))
    })?;
    if session.json {
        return render::print_json(&json!({ "id": id }));
    }
    match partner {
        Some(name) => session.say(format_args!("Saved your appreciation for {name}.")),
        None => session.say("Saved your appreciation."),
    }
    Ok(())
}
