//! The load balancers' data plane (to be built).
