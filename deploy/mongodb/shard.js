// Only if one replica set is not enough (see deploy/README.md, "Sharding"): run on a mongos.
// The keys follow how the gateway reads: everything about one conversation, or one customer,
// lives on one shard.
sh.enableSharding("aftersales");

// Conversations are read by _id, by customer and by open_key (channel:sender). Hashed _id
// spreads writes; the unique open_key index cannot be kept on a sharded collection unless it
// starts with the shard key, so conversations stay UNSHARDED (they are small) - see the README.
// sh.shardCollection("aftersales.conversations", { _id: "hashed" });

// Messages: a conversation's history is one range on one shard, in time order.
// The unique (channel, channel_message_id) index that makes redeliveries idempotent must start
// with the shard key on a sharded collection; the gateway therefore keys it as shown in the
// README before this is run (not done yet: see "Sharding").
// sh.shardCollection("aftersales.messages", { conversation_id: 1, _id: 1 });

// Events (the analytics log) are insert-only and read by name and time range (reports scan
// all shards, which is what reports do anyway).
sh.shardCollection("aftersales.events", { _id: "hashed" });
