//! One DNS message in, one out: decoding the question, asking the [`Zone`] of the moment,
//! encoding the answer within what the transport carries.

use super::zone::{Lookup, Zone};
use super::DnsError;
use crate::app::App;
use crate::servicediscovery::model::DnsView;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use std::sync::{Arc, Mutex, Weak};

/// The largest UDP answer to a question without EDNS (RFC 1035).
const UDP_PLAIN: u16 = 512;
/// The largest UDP answer this server sends to an EDNS question: the size that avoids IP
/// fragmentation on any common path (DNS flag day 2020).
const UDP_EDNS: u16 = 1232;

/// The transport a message came over, which bounds the answer's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Answers questions from the state cache: the zone is built again whenever the cache has
/// moved since the last build, so an answer reflects every write acknowledged before the
/// question (the store's own revision says whether anything changed: no polling, no lag).
#[derive(Debug)]
pub struct Resolver {
    /// Weak, so that listeners left behind never keep a stopped server's state alive.
    app: Weak<App>,
    zone: Mutex<Option<Arc<Zone>>>,
}

impl Resolver {
    /// A resolver over `app`'s state cache.
    pub fn new(app: &Arc<App>) -> Resolver {
        Resolver {
            app: Arc::downgrade(app),
            zone: Mutex::new(None),
        }
    }

    /// The zone as the state cache is now.
    pub fn zone(&self) -> Result<Arc<Zone>, DnsError> {
        let app = self.app.upgrade().ok_or(DnsError::Stopped)?;
        let revision = app.state.revision();
        // Held while building, so that concurrent questions after a change build once.
        let mut zone = self.zone.lock().expect("dns zone lock poisoned");
        if let Some(current) = zone.as_ref().filter(|z| z.revision == revision) {
            return Ok(current.clone());
        }
        // Read after the revision: a write landing in between makes a zone newer than its
        // revision says, rebuilt at the next question; never an older one.
        let view = DnsView::read(&app).map_err(|e| DnsError::Read(e.to_string()))?;
        let built = Arc::new(Zone::build(&view, revision));
        *zone = Some(built.clone());
        Ok(built)
    }

    /// The answer to the DNS message `request`, encoded; None when nothing should be sent
    /// back (a response, or bytes too short to carry a message id).
    pub fn respond(&self, request: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let request = match Message::from_vec(request) {
            Ok(message) => message,
            Err(_) => return format_error(request),
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let id = request.metadata.id;
        let mut response = Message::response(id, request.metadata.op_code);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.checking_disabled = request.metadata.checking_disabled;
        response.add_queries(request.queries.iter().cloned());
        let limit = match transport {
            Transport::Tcp => u16::MAX,
            Transport::Udp => request
                .edns
                .as_ref()
                .map_or(UDP_PLAIN, |e| e.max_payload().clamp(UDP_PLAIN, UDP_EDNS)),
        };
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(UDP_EDNS);
            response.set_edns(edns);
        }
        response.metadata.response_code = self.fill(&request, &mut response);
        encode(&response, usize::from(limit))
    }

    /// Puts the answer to `request`'s question in `response`; returns its code.
    fn fill(&self, request: &Message, response: &mut Message) -> ResponseCode {
        if request.metadata.op_code != OpCode::Query {
            return ResponseCode::NotImp;
        }
        let [query] = request.queries.as_slice() else {
            return ResponseCode::FormErr;
        };
        if query.query_class() != DNSClass::IN {
            return ResponseCode::Refused;
        }
        let zone = match self.zone() {
            Ok(zone) => zone,
            Err(e) => {
                tracing::warn!(error = %e, "DNS: cannot read Cloud Map's records");
                return ResponseCode::ServFail;
            }
        };
        match zone.lookup(query.name(), query.query_type(), request.metadata.id) {
            Lookup::Refused => ResponseCode::Refused,
            Lookup::Found(found) => {
                response.metadata.authoritative = true;
                response.add_answers(found.answers);
                response.add_authorities(found.authorities);
                response.add_additionals(found.additionals);
                if found.nxdomain {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::NoError
                }
            }
        }
    }
}

/// `response` encoded; when it exceeds `limit` bytes, its question alone with the TC bit
/// set, so the client asks again over TCP.
fn encode(response: &Message, limit: usize) -> Option<Vec<u8>> {
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Some(bytes),
        Ok(_) => response.truncate().to_vec().ok(),
        Err(e) => {
            tracing::warn!(error = %e, "DNS: cannot encode an answer");
            let id = response.metadata.id;
            Message::error_msg(id, OpCode::Query, ResponseCode::ServFail)
                .to_vec()
                .ok()
        }
    }
}

/// FORMERR for bytes that are no DNS message but start like a question (an id, the QR bit
/// clear); nothing otherwise.
fn format_error(request: &[u8]) -> Option<Vec<u8>> {
    let [high, low, flags, ..] = *request else {
        return None;
    };
    if flags & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([high, low]);
    Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
        .to_vec()
        .ok()
}
