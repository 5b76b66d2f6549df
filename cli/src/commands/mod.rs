//! One module per command. Each takes the [`Session`] and its parsed arguments, does its one
//! job through `hearth_client`, and prints for a person (or JSON with `--json`).

mod appreciate;
pub mod checkin;
mod daily;
mod deck;
mod demo;
mod device;
mod export;
mod feedback;
mod init;
mod journal;
pub mod log;
mod pairing;
mod relay;
mod remind;
mod status;
mod trends;
mod unlock;
mod verify;

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result};

use crate::args::{Cli, Command};
use crate::exit::user_error;
use crate::session::Session;

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> Result<()> {
    // Generated from the command line itself, with no profile involved.
    match cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "hearth", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            let mut out = Vec::new();
            page.render(&mut out)
                .context("cannot render the manual page")?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)
                .context("cannot write the manual page")?;
            return Ok(());
        }
        _ => {}
    }
    let mut session = Session::new(cli.home, cli.json)?;
    session.quiet = cli.quiet;
    session.may_remind = crate::reminder::may_follow(&cli.command, &session);
    let result = match cli.command {
        Command::Completions { .. } | Command::Man => Ok(()),
        Command::Init(args) => init::run(&session, args),
        Command::Checkin(args) => checkin::run(&session, args),
        Command::Appreciate(args) => appreciate::run(&session, args),
        Command::Feedback(args) => feedback::run(&session, args),
        Command::Journal(cmd) => journal::run(&session, cmd),
        Command::Log(args) => log::run(&session, args),
        Command::Trends(args) => trends::run(&session, args),
        Command::Export(args) => export::run(&session, args),
        Command::Status => status::run(&session),
        Command::Unlock(args) => unlock::unlock(&session, &args),
        Command::Lock => unlock::lock(&session),
        Command::Verify => verify::run(&session),
        Command::Demo(args) => demo::run(&session, args),
        Command::Invite(args) => pairing::invite(&session, args),
        Command::Join(args) => pairing::join(&session, args),
        Command::Sync(args) => pairing::sync(&session, args),
        Command::Watch => pairing::watch(&session),
        Command::Device(cmd) => device::run(&session, cmd),
        Command::Relay(args) => relay::run(&session, args),
        Command::Remind(args) => remind::run(&session, &args),
        Command::Deck(cmd) => deck::run(&session, cmd),
        Command::Daily(args) => daily::run(&session, args),
    };
    if result.is_ok() {
        crate::reminder::after_command(&session);
    }
    result
}

/// Text for a command: the argument itself, standard input for "-", or a prompt when a
/// person is at a terminal.
fn text_argument(
    session: &Session,
    arg: Option<String>,
    prompt: &str,
    what: &str,
) -> Result<String> {
    let text = match arg.as_deref() {
        Some("-") => read_stdin()?,
        Some(_) => arg.unwrap_or_default(),
        None if session.interactive => dialoguer::Input::<String>::new()
            .with_prompt(prompt)
            .allow_empty(true)
            .interact_text()
            .context("reading your answer")?,
        None if !std::io::stdin().is_terminal() => read_stdin()?,
        None => {
            user_error!("give the {what} as an argument, or \"-\" to read it from standard input")
        }
    };
    Ok(text.trim().to_owned())
}

fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading standard input")?;
    Ok(text)
}

/// Asks for one line on the terminal; empty input means "skip".
fn ask_line(prompt: &str) -> Result<Option<String>> {
    let text: String = dialoguer::Input::new()
        .with_prompt(prompt)
        .allow_empty(true)
        .interact_text()
        .context("reading your answer")?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}
