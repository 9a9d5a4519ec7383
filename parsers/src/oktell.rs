//! Oktell A_Stat_Connections_1x1 exports. Being written.
