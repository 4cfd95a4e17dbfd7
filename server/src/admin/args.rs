//! The command line of `lode-server admin`.

use clap::{Args, Subcommand};
use lode_proto::Role;

use crate::db::Grantee;

#[derive(Subcommand)]
pub enum AdminCmd {
    #[command(subcommand)]
    Project(ProjectCmd),
    #[command(subcommand)]
    User(UserCmd),
    #[command(subcommand)]
    Group(GroupCmd),
    #[command(subcommand)]
    Grant(GrantCmd),
    #[command(subcommand)]
    Token(TokenCmd),
    /// Objects and bytes a project holds.
    Usage { project: String },
    /// Recent audit log entries, newest first.
    Audit {
        #[arg(long)]
        project: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum ProjectCmd {
    Create { name: String },
    List,
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum UserCmd {
    Create {
        name: String,
        #[arg(long)]
        server_admin: bool,
    },
    List,
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum GroupCmd {
    Create { name: String },
    List,
    Delete { name: String },
    AddMember { group: String, user: String },
    RemoveMember { group: String, user: String },
}

#[derive(Args)]
pub struct GranteeArgs {
    #[arg(long, conflicts_with = "user", required_unless_present = "user")]
    group: Option<String>,
    #[arg(long)]
    user: Option<String>,
}

impl GranteeArgs {
    pub fn get(&self) -> Grantee<'_> {
        match (&self.group, &self.user) {
            (Some(g), _) => Grantee::Group(g),
            (None, Some(u)) => Grantee::User(u),
            (None, None) => Grantee::User(""),
        }
    }
}

#[derive(Subcommand)]
pub enum GrantCmd {
    /// Give a group or user a role on a project.
    Set {
        #[arg(long)]
        project: String,
        #[command(flatten)]
        who: GranteeArgs,
        #[arg(long)]
        role: Role,
    },
    Remove {
        #[arg(long)]
        project: String,
        #[command(flatten)]
        who: GranteeArgs,
    },
    List {
        #[arg(long)]
        project: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a token; the token alone is printed on the last line of stdout.
    Create {
        /// A project token with --role.
        #[arg(long, conflicts_with = "server_admin", requires = "role")]
        project: Option<String>,
        #[arg(long)]
        role: Option<Role>,
        /// A user token (with --server-admin: the admin user's name, default "admin").
        #[arg(long)]
        user: Option<String>,
        /// A token of a server admin user, created if missing.
        #[arg(long)]
        server_admin: bool,
        /// Lifetime, e.g. 30d, 12h; no expiry when left out.
        #[arg(long)]
        expires_in: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    List {
        #[arg(long)]
        project: Option<String>,
    },
    Revoke {
        id: String,
    },
}
