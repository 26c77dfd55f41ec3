// mongosh --host db1.internal -u root -p --authenticationDatabase admin deploy/mongodb/init-replica-set.js
// Three members: an accepted message (written with w=majority) survives the loss of any one.
rs.initiate({
  _id: "rs-aftersales",
  members: [
    { _id: 0, host: "db1.internal:27017", priority: 2 },
    { _id: 1, host: "db2.internal:27017", priority: 1 },
    { _id: 2, host: "db3.internal:27017", priority: 1 },
  ],
});

// The gateways' account: read and write the after-sales database, nothing else.
db.getSiblingDB("admin").createUser({
  user: "aftersales",
  pwd: passwordPrompt(),
  roles: [{ role: "readWrite", db: "aftersales" }],
});
// Operators and reports that only look: read, never write (a stray write can stop turns, see
// docs/threat-model.md).
db.getSiblingDB("admin").createUser({
  user: "aftersales_readonly",
  pwd: passwordPrompt(),
  roles: [{ role: "read", db: "aftersales" }],
});
// The gateways create their own indexes at start (ConversationStore.ensure_indexes and the
// services' ensure_indexes); nothing else is needed before the first start.
