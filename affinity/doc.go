// Package affinity is the pin table: sid -> node. One Store interface, made of PinTable (the table
// itself) and ClusterState (what the instances sharing a table tell each other: drain marks and
// evictions), and two implementations: an in-memory go-memdb table (the default for one instance) and
// a Redis table shared by every sidpin instance, with a local cache in front. Pins never change once
// made, which is why a local cache needs no invalidation.
//
// It must not know HTTP or Engine.IO framing; it stores and expires pins.
package affinity
