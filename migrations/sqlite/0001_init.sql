-- Projects, principals, grants, tokens, the objects each project holds, and the audit log.
-- Times are Unix seconds (UTC).

-- AUTOINCREMENT: a deleted project's id is never given to a new project, so nothing keyed by
-- the old id (cached answers, stray rows) can ever apply to a different project.
CREATE TABLE projects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    is_admin    INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at  INTEGER NOT NULL
);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE memberships (
    group_id    INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships(user_id);

-- A grant gives a group or a user a role on a project.
CREATE TABLE grants (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    group_id    INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    user_id     INTEGER REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    created_at  INTEGER NOT NULL,
    CHECK ((group_id IS NULL) <> (user_id IS NULL))
);
CREATE UNIQUE INDEX grants_group ON grants(project_id, group_id) WHERE group_id IS NOT NULL;
CREATE UNIQUE INDEX grants_user ON grants(project_id, user_id) WHERE user_id IS NOT NULL;

-- A token is either scoped to one project with a role, or acts as a user (with that user's grants).
-- Only the id (the JWT's jti) and the SHA-256 of the token are kept, never the token itself.
CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    token_sha256  TEXT NOT NULL,
    project_id    INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,
    role          TEXT CHECK (role IN ('read', 'write', 'admin')),
    description   TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER,
    CHECK ((project_id IS NULL) <> (user_id IS NULL)),
    CHECK (project_id IS NULL OR role IS NOT NULL)
);
CREATE INDEX tokens_by_project ON tokens(project_id);
CREATE INDEX tokens_by_user ON tokens(user_id);

-- The objects a project holds. Blobs are shared on disk; this table is what a project may see.
CREATE TABLE project_objects (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('md5', 'md5-dos2unix')),
    oid         TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, kind, oid)
) WITHOUT ROWID;
CREATE INDEX project_objects_by_blob ON project_objects(kind, oid);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    project     TEXT,
    target      TEXT,
    detail      TEXT
);
CREATE INDEX audit_by_project ON audit_log(project, id);
