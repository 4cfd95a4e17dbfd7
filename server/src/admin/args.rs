//! The command line of `lode-server admin`.

use clap::{Args, Subcommand};
use lode_proto::Role;

use crate::db::Grantee;

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create, list and delete projects.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Create, list and delete users.
    #[command(subcommand)]
    User(UserCmd),
    /// Create, list and delete groups, and change their members.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Set, remove and list the roles groups and users have on projects.
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Create, list and revoke access tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Objects and bytes a project holds.
    Usage {
        /// The project's name.
        project: String,
    },
    /// Recent audit log entries, newest first.
    Audit {
        /// Only the entries of this project.
        #[arg(long)]
        project: Option<String>,
        /// Most entries to print.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum ProjectCmd {
    /// Create a project.
    Create {
        /// The project's name.
        name: String,
    },
    /// List projects.
    List,
    /// Delete a project.
    Delete {
        /// The project's name.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user.
    Create {
        /// The user's name.
        name: String,
        /// Make the user a server admin.
        #[arg(long)]
        server_admin: bool,
    },
    /// List users.
    List,
    /// Delete a user.
    Delete {
        /// The user's name.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum GroupCmd {
    /// Create a group.
    Create {
        /// The group's name.
        name: String,
    },
    /// List groups.
    List,
    /// Delete a group.
    Delete {
        /// The group's name.
        name: String,
    },
    /// Add a user to a group.
    AddMember {
        /// The group's name.
        group: String,
        /// The user's name.
        user: String,
    },
    /// Remove a user from a group.
    RemoveMember {
        /// The group's name.
        group: String,
        /// The user's name.
        user: String,
    },
}

#[derive(Args)]
pub struct GranteeArgs {
    /// The group whose role it is (or --user).
    #[arg(long, conflicts_with = "user", required_unless_present = "user")]
    group: Option<String>,
    /// The user whose role it is (or --group).
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
    #[command(after_help = "Examples:
  # Everyone in the group ml-team may pull from project ml
  lode-server admin grant set --project ml --group ml-team --role read
  # alice may also push
  lode-server admin grant set --project ml --user alice --role write")]
    Set {
        /// The project's name.
        #[arg(long)]
        project: String,
        #[command(flatten)]
        who: GranteeArgs,
        /// The role: read (pull), write (also push) or admin (also manage the project).
        #[arg(long)]
        role: Role,
    },
    /// Take a group's or user's role on a project away.
    Remove {
        /// The project's name.
        #[arg(long)]
        project: String,
        #[command(flatten)]
        who: GranteeArgs,
    },
    /// List the roles groups and users have on a project.
    List {
        /// The project's name.
        #[arg(long)]
        project: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a token; the token alone is printed on the last line of stdout.
    #[command(after_help = "Examples:
  # A token for CI that may push to project ml for 90 days
  lode-server admin token create --project ml --role write --expires-in 90d --description ci
  # A token acting as user alice, with alice's grants
  lode-server admin token create --user alice
  # A server admin token (creates the user admin when missing)
  lode-server admin token create --server-admin")]
    Create {
        /// A project token with --role.
        #[arg(long, conflicts_with = "server_admin", requires = "role")]
        project: Option<String>,
        /// The project token's role: read, write or admin.
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
        /// A note kept with the token and shown by `token list`.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (their ids and details, never the tokens themselves).
    List {
        /// Only the tokens of this project.
        #[arg(long)]
        project: Option<String>,
    },
    /// Revoke a token.
    Revoke {
        /// The token's id, as `token list` prints it.
        id: String,
    },
}
