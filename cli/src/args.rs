//! The command line, as clap sees it. Help texts here are the first documentation a user
//! reads; keep them warm and exact.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Where `--relay-token` may come from instead of the command line, which other users of
/// the machine can read in the process list while the command runs.
pub const RELAY_TOKEN_ENV: &str = "HEARTH_RELAY_TOKEN";

/// hearth: a private, shared space for the two of you. Weekly check-ins, appreciations,
/// kind feedback and a journal, encrypted on your own devices.
#[derive(Debug, Parser)]
#[command(
    name = "hearth",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Start with `hearth init --name YOUR-NAME`, then `hearth checkin` once a week.\n\
Exit codes: 0 ok, 1 something to fix in the command, 2 sync unavailable (data kept), 3 data or key problem."
)]
pub struct Cli {
    /// Profile directory [default: the platform data directory, e.g. ~/.local/share/hearth]
    #[arg(long, global = true, env = "HEARTH_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print machine-readable JSON instead of text, wherever a command prints data
    #[arg(long, global = true)]
    pub json: bool,

    /// Say less: no confirmations, hints or progress; errors and the data you asked for
    /// are still printed
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create your profile and a new shared space on this device
    Init(InitArgs),
    /// This week's check-in: answer on your own, then compare once you both have
    Checkin(CheckinArgs),
    /// Say thank you for something specific
    Appreciate(AppreciateArgs),
    /// Raise one thing, kindly: observation, feeling, need, request
    Feedback(FeedbackArgs),
    /// A shared journal, with private entries only you can see
    #[command(subcommand)]
    Journal(JournalCommand),
    /// A timeline of everything, newest last
    Log(LogArgs),
    /// How each of you has felt about "us", week by week
    Trends(TrendsArgs),
    /// Write everything out as JSON or Markdown (plaintext: keep the file safe)
    Export(ExportArgs),
    /// Where things stand: your profile, this week's check-in, open commitments
    Status,
    /// Type your passphrase once: commands (and the reminder timer) open the profile
    /// without it for a while, `--for 8h` by default. The key is held in the kernel
    /// keyring, never in a file
    Unlock(UnlockArgs),
    /// Forget the key `hearth unlock` keeps: commands ask for the passphrase again
    Lock,
    /// A code to compare with your partner side by side: the same code means you both see
    /// the same devices and the same history
    Verify,
    /// Invite your partner (or another device of yours): prints a one-time code
    Invite(InviteArgs),
    /// Join a space with an invite code, on this device
    Join(JoinArgs),
    /// Push your changes and pull your partner's, once
    Sync(SyncArgs),
    /// Stay connected: print your partner's new entries as they arrive (Ctrl-C to stop)
    Watch,
    /// The space's devices: list them, or remove a lost or retired one
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Which relay your space syncs through; `hearth relay set ADDRESS` moves it to another
    Relay(RelayArgs),
    /// See hearth in action: a scripted week in a throwaway profile
    Demo(DemoArgs),
    /// Print a completion script for your shell, e.g. `hearth completions bash >
    /// ~/.local/share/bash-completion/completions/hearth`
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `hearth man > ~/.local/share/man/man1/hearth.1`
    Man,
    /// A gentle nudge when this week's check-in is waiting for you (for a timer or your
    /// shell's startup file); `--install` sets up a weekly timer
    Remind(RemindArgs),
    /// Question decks: the built-in ones and your own (TOML files), shared with your partner
    #[command(subcommand)]
    Deck(DeckCommand),
    /// "How are you really doing?": one honest line, kept in your shared journal
    Daily(DailyArgs),
}

#[derive(Debug, Subcommand)]
pub enum DeckCommand {
    /// List the decks: built in, and the ones the two of you added
    List,
    /// Show a deck's questions and their answer keys
    Show {
        /// The deck's id, e.g. gentle-v1 (or just gentle)
        id: String,
    },
    /// Add your own deck from a TOML file (see docs/checkins.md, "Decks"); it reaches your
    /// partner on the next sync
    Add {
        /// The deck file ("-" reads standard input)
        file: PathBuf,
        /// Replace a different deck of yours with the same id
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Debug, Args)]
pub struct DailyArgs {
    /// How you are really doing, in a line ("-" reads standard input; asked when left out
    /// at a terminal)
    pub text: Option<String>,
    /// And as a number, 1 (running on empty) to 5 (doing well)
    #[arg(long, value_name = "1-5")]
    pub score: Option<String>,
    /// Keep it to yourself: a private journal entry on this device only
    #[arg(long)]
    pub private: bool,
}

#[derive(Debug, Args)]
pub struct RemindArgs {
    /// Print the reminder on standard output instead of a desktop notification
    #[arg(long, conflicts_with_all = ["install", "uninstall"])]
    pub print: bool,
    /// Sync first if the space is on a relay (an unreachable relay is skipped); with
    /// --install, the timer does
    #[arg(long, conflicts_with = "uninstall")]
    pub sync: bool,
    /// Set up a weekly timer (systemd user units, or a crontab line to add)
    #[arg(long, conflicts_with = "uninstall")]
    pub install: bool,
    /// When the timer fires: "Sun 19:00", "Mon,Thu 20:30", or "19:00" for every day
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "Sun 19:00",
        requires = "install"
    )]
    pub at: String,
    /// Print a crontab line instead of writing systemd units
    #[arg(long, requires = "install")]
    pub cron: bool,
    /// Replace unit files that differ from the ones hearth would write
    #[arg(long, requires = "install")]
    pub force: bool,
    /// Remove the timer's unit files
    #[arg(long)]
    pub uninstall: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// How long to stay unlocked: "8h", "30m", "1h 30m", "7d" (at most 31 days)
    #[arg(
        long = "for",
        value_name = "DURATION",
        default_value = "8h",
        value_parser = parse_duration
    )]
    pub duration: std::time::Duration,
    /// Read the passphrase from the first line of standard input (from a password manager,
    /// say) instead of HEARTH_PASSPHRASE or a prompt
    #[arg(long)]
    pub passphrase_stdin: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let example = "write a duration such as \"8h\", \"30m\" or \"2d\"";
    let duration = humantime::parse_duration(s).map_err(|e| format!("{e}: {example}"))?;
    let max = hearth_client::unlock::MAX_UNLOCK_FOR;
    if duration.is_zero() {
        return Err(format!(
            "a profile cannot be unlocked for no time: {example}"
        ));
    }
    if duration > max {
        return Err(format!(
            "at most {} days; for longer, a profile without a passphrase is the honest choice",
            max.as_secs() / 86_400
        ));
    }
    Ok(duration)
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo profile in DIR (a new directory) to explore it afterwards
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Your name, as your partner will see it
    #[arg(long)]
    pub name: Option<String>,
    /// Protect your keys with file permissions only (0600), without a passphrase
    #[arg(long)]
    pub no_passphrase: bool,
    /// Sync through this relay: its address as you were given it (relay.example.org,
    /// host:port, or wss://relay.example.org/v1/sync). It must answer, or nothing is
    /// created. Without it hearth stays offline until `hearth invite --relay`
    #[arg(long, value_name = "URL")]
    pub relay: Option<String>,
    /// Also trust this CA certificate (PEM) for the relay, e.g. a private CA's ca.crt; it is
    /// copied into the profile and used for every later connection
    #[arg(long, value_name = "PATH", requires = "relay")]
    pub ca_file: Option<PathBuf>,
    /// A creation token from the relay's operator, for a relay that admits new spaces only
    /// with one (it starts with hrt_); used once to create your space there, never saved.
    /// Your partner needs none to join
    #[arg(long, value_name = "TOKEN", env = RELAY_TOKEN_ENV, hide_env_values = true, requires = "relay")]
    pub relay_token: Option<hearth_client::sync::RelayToken>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Also trust this CA certificate (PEM) for the relay from now on, in place of one
    /// given before (for a relay that moved to a private CA); kept in the profile
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// A creation token from the relay's operator, should your space not be on the relay
    /// yet (or any more) and the relay admit new spaces only with one; never saved
    #[arg(long, value_name = "TOKEN")]
    pub relay_token: Option<hearth_client::sync::RelayToken>,
}

#[derive(Debug, Args)]
pub struct InviteArgs {
    /// Invite another device of yours instead of your partner
    #[arg(long)]
    pub device: bool,
    /// Put an offline space on this relay first (relay.example.org, host:port, or
    /// wss://…/v1/sync); it must answer. To move a space that is already on a relay, see
    /// `hearth relay set`
    #[arg(long, value_name = "URL")]
    pub relay: Option<String>,
    /// Also trust this CA certificate (PEM) for the relay, e.g. a private CA's ca.crt; it is
    /// copied into the profile and used for every later connection
    #[arg(long, value_name = "PATH", requires = "relay")]
    pub ca_file: Option<PathBuf>,
    /// Hours until the invite expires
    #[arg(long, value_name = "HOURS", default_value_t = 72)]
    pub expires: u64,
    /// A creation token from the relay's operator, for a relay that admits new spaces only
    /// with one; used once, when your space is first created there, and never saved
    #[arg(long, value_name = "TOKEN", env = RELAY_TOKEN_ENV, hide_env_values = true)]
    pub relay_token: Option<hearth_client::sync::RelayToken>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List the space's devices, yours and your partner's
    List,
    /// Remove a device: the space moves to a new key it never receives
    Remove(DeviceRemoveArgs),
}

#[derive(Debug, Args)]
pub struct RelayTrustArgs {
    /// The relay's fingerprint, 32 hex digits (e.g. 3f2a-9c1b-0b4d-e5f6-1234-5678-9abc-def0)
    pub fingerprint: String,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RelayArgs {
    #[command(subcommand)]
    pub command: Option<RelayCommand>,
}

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Print the relay your space syncs through (what `hearth relay` alone does)
    Show,
    /// Move your space to another relay: it must answer; your space and its history go
    /// there, and your partner's devices follow on their next sync (through the old relay,
    /// while it still runs; if it is gone, run this on each of them too)
    Set(RelaySetArgs),
    /// Trust the relay's new key after its operator rebuilt it: give the fingerprint they
    /// gave you (`hearth-relay fingerprint` on the server). hearth checks it against the key
    /// the relay presents, and changes nothing if they differ
    Trust(RelayTrustArgs),
}

#[derive(Debug, Args)]
pub struct RelaySetArgs {
    /// The new relay's address, as you were given it (relay.example.org, host:port, or
    /// wss://relay.example.org/v1/sync)
    pub url: String,
    /// Also trust this CA certificate (PEM) for the new relay, e.g. a private CA's ca.crt,
    /// in place of one given before; it is copied into the profile [default: the CA the
    /// profile trusts already, if any, besides the machine's roots]
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// A creation token from the new relay's operator, for a relay that admits new spaces
    /// only with one; used once, to create your space there, and never saved
    #[arg(long, value_name = "TOKEN", env = RELAY_TOKEN_ENV, hide_env_values = true)]
    pub relay_token: Option<hearth_client::sync::RelayToken>,
}

#[derive(Debug, Args)]
pub struct DeviceRemoveArgs {
    /// The device's id (the short id from `hearth device list` is enough)
    pub device: String,
    /// Do not ask before removing (needed when not at a terminal)
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The invite code you were given (hearth1.…)
    pub code: String,
    /// Your name, when you join as the partner
    #[arg(long)]
    pub name: Option<String>,
    /// Protect this device's keys with file permissions only (0600), without a passphrase
    #[arg(long)]
    pub no_passphrase: bool,
    /// Also trust this CA certificate (PEM) for the relay in the code, e.g. a private CA's
    /// ca.crt (ask whoever runs the relay); it is copied into the profile and used for every
    /// later connection
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CheckinArgs {
    /// Answer without prompts, e.g. --answer feeling=8 --answer need=time,fun (repeatable;
    /// see `hearth checkin keys` or docs/checkins.md)
    #[arg(long = "answer", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub answers: Vec<(String, String)>,
    /// The ISO week to answer for, e.g. 2026-W47 [default: this week]
    #[arg(long)]
    pub week: Option<String>,
    /// Answer with another check-in deck, e.g. gentle or deeper (`hearth deck list`); a week
    /// your partner has already opened keeps their deck [default: the week's, else weekly]
    #[arg(long, value_name = "ID")]
    pub deck: Option<String>,
    #[command(subcommand)]
    pub command: Option<CheckinCommand>,
}

#[derive(Debug, Subcommand)]
pub enum CheckinCommand {
    /// Show a week's answers: yours, and your partner's once you have both answered
    Show {
        /// The ISO week, e.g. 2026-W47 [default: this week, else the latest check-in]
        week: Option<String>,
    },
    /// List the questions and the keys to answer them with --answer
    Keys {
        /// The deck's questions [default: the weekly check-in]
        #[arg(long, value_name = "ID")]
        deck: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct AppreciateArgs {
    /// What you appreciated, in a sentence ("-" reads it from standard input)
    pub text: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FeedbackArgs {
    /// When I noticed… (what happened, without judging it)
    #[arg(long)]
    pub observation: Option<String>,
    /// I felt…
    #[arg(long)]
    pub feeling: Option<String>,
    /// …because I need…
    #[arg(long)]
    pub need: Option<String>,
    /// Would you be willing to…? (a request can be declined)
    #[arg(long)]
    pub request: Option<String>,
    #[command(subcommand)]
    pub command: Option<FeedbackCommand>,
}

#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// List feedback threads with their replies
    List,
    /// Reply to a feedback thread: reflect it back, say whether you felt heard, or respond
    Reply(ReplyArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("reply").required(true).args(["reflect", "heard", "respond"]))]
pub struct ReplyArgs {
    /// The thread's id (the short id shown by `hearth feedback list` is enough)
    pub id: String,
    /// As the listener: say back what you heard ("What I'm hearing is…")
    #[arg(long)]
    pub reflect: Option<String>,
    /// As the one who raised it: did your partner get it?
    #[arg(long, value_enum)]
    pub heard: Option<Heard>,
    /// A few words to go with --heard
    #[arg(long, requires = "heard")]
    pub note: Option<String>,
    /// As the listener: answer the request (yes, not now, or another idea)
    #[arg(long)]
    pub respond: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Heard {
    Yes,
    Partly,
    No,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Write an entry: TEXT, "-" for standard input, or nothing to open $EDITOR
    Add(JournalAddArgs),
    /// List journal entries, yours and shared ones
    List(JournalListArgs),
}

#[derive(Debug, Args)]
pub struct JournalAddArgs {
    /// The entry ("-" reads standard input; leave out to write it in $VISUAL / $EDITOR)
    pub text: Option<String>,
    /// A title
    #[arg(long)]
    pub title: Option<String>,
    /// A tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Keep it to yourself: stored encrypted on this device only, never shared
    #[arg(long)]
    pub private: bool,
}

#[derive(Debug, Args)]
pub struct JournalListArgs {
    /// Only entries with this tag
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the last N items (of those the filters keep)
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
    /// Only these kinds (repeatable, or comma-separated: --kind appreciation,journal)
    #[arg(long, value_enum, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<LogKind>,
    /// Only what one of you did: a name (any case), `me` or `partner`
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
    /// From then on: a day (2026-11-02), an ISO week (2026-W45, from its Monday), or a
    /// span back from now (7d, 4w)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<crate::log_filter::When>,
    /// Up to then, a day or week included whole (same forms as --since)
    #[arg(long, value_name = "WHEN")]
    pub until: Option<crate::log_filter::When>,
}

/// What `hearth log --kind` picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogKind {
    /// Appreciations
    Appreciation,
    /// Feedback raised
    Feedback,
    /// Replies to feedback
    Reply,
    /// Journal entries, shared and your private ones
    Journal,
    /// Check-ins answered (never the answers themselves)
    Checkin,
    /// "One small thing I'll do for us", with how it went
    Commitment,
}

#[derive(Debug, Args)]
pub struct TrendsArgs {
    /// Also draw the chart as an SVG picture in FILE (refuses to overwrite an existing file)
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Also draw the chart as a PNG picture in FILE (refuses to overwrite an existing file;
    /// needs a font: set HEARTH_FONT to a .ttf or .otf file if none is found)
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// json (everything, machine-readable) or md (a readable document)
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write to FILE instead of standard output (refuses to overwrite an existing file)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Json,
    Md,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, e.g. feeling=8, got {s:?}"))?;
    Ok((key.trim().to_owned(), value.to_owned()))
}
