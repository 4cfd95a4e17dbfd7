-- Projects, principals, grants, tokens, the objects each project holds and the audit log, as in
-- migrations/sqlite/, plus what several servers sharing this database coordinate through: the
-- token-signing secret, the removal epoch, blob holds and leases. Times are Unix seconds (UTC).
-- Names sort byte by byte (COLLATE "C"), as the index promises whatever the engine.

-- Identity columns never hand out a value twice: a deleted project's id is never given to a new
-- project, so nothing keyed by the old id (cached answers, stray rows) can apply to another.
CREATE TABLE projects (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    is_admin    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE groups (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE memberships (
    group_id    BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships(user_id);

-- A grant gives a group or a user a role on a project.
CREATE TABLE grants (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    group_id    BIGINT REFERENCES groups(id) ON DELETE CASCADE,
    user_id     BIGINT REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    created_at  BIGINT NOT NULL,
    CHECK ((group_id IS NULL) <> (user_id IS NULL))
);
CREATE UNIQUE INDEX grants_group ON grants(project_id, group_id) WHERE group_id IS NOT NULL;
CREATE UNIQUE INDEX grants_user ON grants(project_id, user_id) WHERE user_id IS NOT NULL;

-- A token is either scoped to one project with a role, or acts as a user (with that user's grants).
-- Only the id (the JWT's jti) and the SHA-256 of the token are kept, never the token itself.
-- `seq` orders tokens created in the same second.
CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    seq           BIGINT GENERATED ALWAYS AS IDENTITY,
    token_sha256  TEXT NOT NULL,
    project_id    BIGINT REFERENCES projects(id) ON DELETE CASCADE,
    user_id       BIGINT REFERENCES users(id) ON DELETE CASCADE,
    role          TEXT CHECK (role IN ('read', 'write', 'admin')),
    description   TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT,
    CHECK ((project_id IS NULL) <> (user_id IS NULL)),
    CHECK (project_id IS NULL OR role IS NOT NULL)
);
CREATE INDEX tokens_by_project ON tokens(project_id);
CREATE INDEX tokens_by_user ON tokens(user_id);

-- The objects a project holds. Blobs are shared in the store; this table is what a project may see.
CREATE TABLE project_objects (
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('md5', 'md5-dos2unix')),
    oid         TEXT COLLATE "C" NOT NULL,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, kind, oid)
);
CREATE INDEX project_objects_by_blob ON project_objects(kind, oid);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    project     TEXT,
    target      TEXT,
    detail      TEXT
);
CREATE INDEX audit_by_project ON audit_log(project, id);

-- The secret every server signs and checks tokens with, created once by whichever starts first.
CREATE TABLE signing_secret (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  BYTEA NOT NULL
);

-- Changed in the same transaction as every removal of references, so each server drops what it
-- cached about which project holds what.
CREATE TABLE removal_epoch (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    value   BIGINT NOT NULL
);
INSERT INTO removal_epoch (id, value) VALUES (1, 0);

-- A blob held by an upload (until its references are indexed) or by a collection deleting it.
-- `holder` names the server process, which renews its rows while it lives; the rows of a process
-- that died expire. Unlogged, like the leases: rows live for seconds, so their commits need not
-- wait for the disk, and a database that crashed forgets them along with the work they guarded.
CREATE UNLOGGED TABLE blob_holds (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL,
    oid         TEXT COLLATE "C" NOT NULL,
    purpose     TEXT NOT NULL CHECK (purpose IN ('upload', 'delete')),
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX blob_holds_by_blob ON blob_holds(kind, oid);
CREATE INDEX blob_holds_by_holder ON blob_holds(holder);

-- Named leases (the garbage collection's), held by one process at a time until they expire.
CREATE UNLOGGED TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
