extern crate std;

use alloc::vec;

use getrandom::SysRng;
use protocol::report::SnpReport;
use protocol::seal::rand_core::UnwrapErr;
use protocol::service::{MAX_VALUES, decode_values};
use protocol::tee::Tee;

use super::*;
use crate::SimulatedAttester;
use protocol::session::SessionRequest;

/// Doubles each value; refuses anything but 3 finite values in [0, 10]. Embeds token ids as their halves; refuses
/// more than 4 ids, or an id of 100 or more. Records the size of each batch it is given.
#[derive(Default)]
struct Doubler {
    batch_sizes: Vec<usize>,
}

impl Model for Doubler {
    fn infer(&mut self, values: &[f32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode> {
        if values.len() != 3 {
            return Err(ServiceErrorCode::WrongValueCount);
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ServiceErrorCode::NonFiniteValue);
        }
        if values.iter().any(|v| !(0.0..=10.0).contains(v)) {
            return Err(ServiceErrorCode::ValueOutOfRange);
        }
        Ok(Zeroizing::new(values.iter().map(|v| v * 2.0).collect()))
    }

    fn embed(&mut self, token_ids: &[u32]) -> Result<Zeroizing<Vec<f32>>, ServiceErrorCode> {
        if token_ids.is_empty() || token_ids.len() > 4 {
            return Err(ServiceErrorCode::TokenCountOutOfRange);
        }
        if token_ids.iter().any(|&id| id >= 100) {
            return Err(ServiceErrorCode::TokenOutOfVocabulary);
        }
        Ok(Zeroizing::new(token_ids.iter().map(|&id| id as f32 / 2.0).collect()))
    }

    fn infer_batch(&mut self, inputs: &[&[f32]]) -> Vec<Result<Zeroizing<Vec<f32>>, ServiceErrorCode>> {
        self.batch_sizes.push(inputs.len());
        inputs.iter().map(|values| self.infer(values)).collect()
    }
}

fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

fn service() -> Service<SimulatedAttester, Doubler> {
    let mut service = Service::new(SimulatedAttester::new([5; 48]), EphemeralKeyPair::generate(&mut rng()));
    service.set_attested();
    service.load_model(Doubler::default());
    service
}

fn ask(service: &mut Service<SimulatedAttester, Doubler>, request: &ServiceRequest) -> ServiceReply {
    let (reply, _) = service.handle(&request.encode().unwrap(), &mut None, &mut rng());
    ServiceReply::decode(&reply).unwrap()
}

fn service_key(service: &mut Service<SimulatedAttester, Doubler>) -> [u8; 32] {
    match ask(service, &ServiceRequest::Evidence { client_nonce: [1; 32] }) {
        ServiceReply::EvidenceIs { service_public_key, .. } => service_public_key,
        other => panic!("{other:?}"),
    }
}

/// Seals `values` to the service with a fresh reply key; returns the request and the reply key pair.
fn infer_request(service_key: &[u8; 32], values: &[f32]) -> (ServiceRequest, EphemeralKeyPair) {
    let reply = EphemeralKeyPair::generate(&mut rng());
    let input = InferInput { reply_public_key: reply.public_key(), values: values.to_vec() };
    let (encapped_key, sealed_input) =
        seal(service_key, &input.encode().unwrap(), INFER_INFO, &[], &mut rng()).unwrap();
    (ServiceRequest::Infer { encapped_key, sealed_input }, reply)
}

/// Seals `token_ids` to the service with a fresh reply key, under `info`.
fn embed_request(service_key: &[u8; 32], token_ids: &[u32], info: &[u8]) -> (ServiceRequest, EphemeralKeyPair) {
    let reply = EphemeralKeyPair::generate(&mut rng());
    let input = EmbedInput { reply_public_key: reply.public_key(), token_ids: token_ids.to_vec() };
    let (encapped_key, sealed_input) = seal(service_key, &input.encode().unwrap(), info, &[], &mut rng()).unwrap();
    (ServiceRequest::Embed { encapped_key, sealed_input }, reply)
}

fn error_of(reply: ServiceReply) -> ServiceErrorCode {
    match reply {
        ServiceReply::Error { code } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn health_says_two_facts() {
    let mut fresh: Service<SimulatedAttester, Doubler> =
        Service::new(SimulatedAttester::new([5; 48]), EphemeralKeyPair::generate(&mut rng()));
    assert_eq!(
        ask(&mut fresh, &ServiceRequest::Health),
        ServiceReply::HealthIs { attested: false, model_loaded: false }
    );
    assert_eq!(
        ask(&mut service(), &ServiceRequest::Health),
        ServiceReply::HealthIs { attested: true, model_loaded: true }
    );
}

#[test]
fn evidence_binds_the_client_nonce_and_the_service_key() {
    let mut service = service();
    let ServiceReply::EvidenceIs { tee, service_public_key, evidence } =
        ask(&mut service, &ServiceRequest::Evidence { client_nonce: [9; 32] })
    else {
        panic!("no evidence");
    };
    assert_eq!(tee, Tee::Plain);
    let report = SnpReport::new(&evidence).unwrap();
    report.verify_simulated().unwrap();
    assert_eq!(report.report_data(), &service_report_data(&[9; 32], &service_public_key));
    assert_eq!(report.measurement(), &[5; 48]);
}

#[test]
fn an_inference_round_trips_sealed_both_ways() {
    let mut service = service();
    let key = service_key(&mut service);
    let (request, reply_key) = infer_request(&key, &[1.0, 2.5, 4.0]);
    let ServiceRequest::Infer { encapped_key: request_encapped, .. } = &request else { unreachable!() };
    let ServiceReply::Result { encapped_key, sealed_output } = ask(&mut service, &request) else {
        panic!("no result");
    };
    let opened = reply_key.open(&encapped_key, &sealed_output, RESULT_INFO, request_encapped).unwrap();
    assert_eq!(decode_values(&opened).unwrap(), vec![2.0, 5.0, 8.0]);
    // The result answers this request only: another request's encapsulated key as AAD does not open it.
    assert!(reply_key.open(&encapped_key, &sealed_output, RESULT_INFO, &[0; 32]).is_err());
}

#[test]
fn bad_requests_get_their_error_and_the_service_goes_on() {
    let mut service = service();
    let key = service_key(&mut service);
    let cases: [(&[f32], ServiceErrorCode); 4] = [
        (&[1.0, 2.0], ServiceErrorCode::WrongValueCount),
        (&[1.0, f32::NAN, 2.0], ServiceErrorCode::NonFiniteValue),
        (&[1.0, f32::INFINITY, 2.0], ServiceErrorCode::NonFiniteValue),
        (&[1.0, 11.0, 2.0], ServiceErrorCode::ValueOutOfRange),
    ];
    for (values, code) in cases {
        let (request, _) = infer_request(&key, values);
        assert_eq!(error_of(ask(&mut service, &request)), code);
    }
    let (body, outcome) = service.handle(&[0xff, 1, 2], &mut None, &mut rng());
    assert_eq!(error_of(ServiceReply::decode(&body).unwrap()), ServiceErrorCode::Malformed);
    assert_eq!(outcome, Outcome { request: "undecodable", error: Some(ServiceErrorCode::Malformed) });
    // Sealed to another key, or tampered: does not open.
    let other = EphemeralKeyPair::generate(&mut rng());
    let (request, _) = infer_request(&other.public_key(), &[1.0, 2.0, 3.0]);
    assert_eq!(error_of(ask(&mut service, &request)), ServiceErrorCode::SealedInputDidNotOpen);
    let (ServiceRequest::Infer { encapped_key, mut sealed_input }, _) = infer_request(&key, &[1.0, 2.0, 3.0]) else {
        unreachable!()
    };
    sealed_input[0] ^= 1;
    let tampered = ServiceRequest::Infer { encapped_key, sealed_input };
    assert_eq!(error_of(ask(&mut service, &tampered)), ServiceErrorCode::SealedInputDidNotOpen);
    // A plaintext that is not an InferInput, and an unusable reply key.
    let (encapped_key, sealed_input) = seal(&key, &[1, 2, 3], INFER_INFO, &[], &mut rng()).unwrap();
    assert_eq!(
        error_of(ask(&mut service, &ServiceRequest::Infer { encapped_key, sealed_input })),
        ServiceErrorCode::Malformed
    );
    let input = InferInput { reply_public_key: [0; 32], values: vec![1.0, 2.0, 3.0] };
    let (encapped_key, sealed_input) = seal(&key, &input.encode().unwrap(), INFER_INFO, &[], &mut rng()).unwrap();
    assert_eq!(
        error_of(ask(&mut service, &ServiceRequest::Infer { encapped_key, sealed_input })),
        ServiceErrorCode::BadReplyKey
    );
    // The most values the codec allows are still refused by the model, not by a panic.
    let (request, _) = infer_request(&key, &vec![1.0; MAX_VALUES]);
    assert_eq!(error_of(ask(&mut service, &request)), ServiceErrorCode::WrongValueCount);
    // And after all of that, a good request is served.
    let (request, _) = infer_request(&key, &[1.0, 2.0, 3.0]);
    assert!(matches!(ask(&mut service, &request), ServiceReply::Result { .. }));
}

#[test]
fn without_a_model_inference_is_not_ready() {
    let mut service: Service<SimulatedAttester, Doubler> =
        Service::new(SimulatedAttester::new([5; 48]), EphemeralKeyPair::generate(&mut rng()));
    let key = service_key(&mut service);
    let (request, _) = infer_request(&key, &[1.0, 2.0, 3.0]);
    assert_eq!(error_of(ask(&mut service, &request)), ServiceErrorCode::NotReady);
}

#[test]
fn an_embedding_round_trips_sealed_and_bad_token_inputs_get_their_error() {
    let mut service = service();
    let key = service_key(&mut service);
    let (request, reply_key) = embed_request(&key, &[2, 9, 40], EMBED_INFO);
    let ServiceRequest::Embed { encapped_key: request_encapped, .. } = &request else { unreachable!() };
    let ServiceReply::Result { encapped_key, sealed_output } = ask(&mut service, &request) else {
        panic!("no result");
    };
    let opened = reply_key.open(&encapped_key, &sealed_output, RESULT_INFO, request_encapped).unwrap();
    assert_eq!(decode_values(&opened).unwrap(), vec![1.0, 4.5, 20.0]);
    let cases: [(&[u32], ServiceErrorCode); 3] = [
        (&[], ServiceErrorCode::TokenCountOutOfRange),
        (&[1, 2, 3, 4, 5], ServiceErrorCode::TokenCountOutOfRange),
        (&[1, 100], ServiceErrorCode::TokenOutOfVocabulary),
    ];
    for (ids, code) in cases {
        let (request, _) = embed_request(&key, ids, EMBED_INFO);
        assert_eq!(error_of(ask(&mut service, &request)), code);
    }
    // An Infer's input cannot be replayed as an Embed, nor an Embed's as an Infer: each is sealed under its own info.
    let (request, _) = embed_request(&key, &[1, 2], INFER_INFO);
    assert_eq!(error_of(ask(&mut service, &request)), ServiceErrorCode::SealedInputDidNotOpen);
    let (ServiceRequest::Embed { encapped_key, sealed_input }, _) = embed_request(&key, &[1, 2], EMBED_INFO) else {
        unreachable!()
    };
    let as_infer = ServiceRequest::Infer { encapped_key, sealed_input };
    assert_eq!(error_of(ask(&mut service, &as_infer)), ServiceErrorCode::SealedInputDidNotOpen);
    // The service goes on.
    let (request, _) = embed_request(&key, &[1], EMBED_INFO);
    assert!(matches!(ask(&mut service, &request), ServiceReply::Result { .. }));
}

/// `request` on a connection whose session is `session`: the reply and its outcome.
fn ask_in(
    service: &mut Service<SimulatedAttester, Doubler>,
    session: &mut Option<Session>,
    request: &ServiceRequest,
) -> (ServiceReply, Outcome) {
    let (reply, outcome) = service.handle(&request.encode().unwrap(), session, &mut rng());
    (ServiceReply::decode(&reply).unwrap(), outcome)
}

/// A client's session with `service`, opened on the connection whose session is `connection`.
fn open_session(service: &mut Service<SimulatedAttester, Doubler>, connection: &mut Option<Session>) -> Session {
    let key = service_key(service);
    let (encapped_key, client) = Session::open(&key, &mut rng()).unwrap();
    let (reply, _) = ask_in(service, connection, &ServiceRequest::SessionOpen { encapped_key });
    assert_eq!(reply, ServiceReply::SessionOpened);
    client
}

fn record(client: &mut Session, request: &SessionRequest) -> ServiceRequest {
    let (number, record) = client.seal_next(&request.encode().unwrap()).unwrap();
    ServiceRequest::SessionRecord { number, record }
}

#[test]
fn a_session_answers_numbered_records_and_model_refusals_travel_inside_it() {
    use protocol::session::decode_reply;
    let mut service = service();
    let mut connection = None;
    let mut client = open_session(&mut service, &mut connection);
    for n in 0..3 {
        let (reply, outcome) = ask_in(
            &mut service,
            &mut connection,
            &record(&mut client, &SessionRequest::Infer(vec![1.0, 2.0, n as f32])),
        );
        let ServiceReply::SessionReply { number, record } = reply else { panic!("{reply:?}") };
        assert_eq!(
            decode_reply(&client.open_next(number, &record).unwrap()).unwrap(),
            Ok(vec![2.0, 4.0, 2.0 * n as f32])
        );
        assert_eq!(outcome, Outcome { request: "infer", error: None });
    }
    // The model refuses an input: the refusal is sealed in the session's reply, and the session goes on.
    let (reply, outcome) =
        ask_in(&mut service, &mut connection, &record(&mut client, &SessionRequest::Infer(vec![1.0])));
    let ServiceReply::SessionReply { number, record: sealed } = reply else { panic!("{reply:?}") };
    assert_eq!(
        decode_reply(&client.open_next(number, &sealed).unwrap()).unwrap(),
        Err(ServiceErrorCode::WrongValueCount)
    );
    assert_eq!(outcome.error, Some(ServiceErrorCode::WrongValueCount));
    let (reply, _) = ask_in(&mut service, &mut connection, &record(&mut client, &SessionRequest::Embed(vec![4, 8])));
    let ServiceReply::SessionReply { number, record: sealed } = reply else { panic!("{reply:?}") };
    assert_eq!(decode_reply(&client.open_next(number, &sealed).unwrap()).unwrap(), Ok(vec![2.0, 4.0]));
}

#[test]
fn replayed_reordered_and_foreign_records_end_the_session_and_nothing_is_answered() {
    let mut service = service();
    let request = SessionRequest::Infer(vec![1.0, 2.0, 3.0]);
    let refused = |code| ServiceReply::Error { code };

    // Replayed: the same record twice. Then the session is over, whatever comes.
    let mut connection = None;
    let mut client = open_session(&mut service, &mut connection);
    let first = record(&mut client, &request);
    assert!(matches!(ask_in(&mut service, &mut connection, &first).0, ServiceReply::SessionReply { .. }));
    assert_eq!(ask_in(&mut service, &mut connection, &first).0, refused(ServiceErrorCode::SessionRecordRefused));
    let next = record(&mut client, &request);
    assert_eq!(ask_in(&mut service, &mut connection, &next).0, refused(ServiceErrorCode::NoSession));

    // Reordered, or one dropped: record 1 before record 0.
    let mut connection = None;
    let mut client = open_session(&mut service, &mut connection);
    let _dropped = record(&mut client, &request);
    let second = record(&mut client, &request);
    assert_eq!(ask_in(&mut service, &mut connection, &second).0, refused(ServiceErrorCode::SessionRecordRefused));

    // Another connection's session: its records open nowhere else.
    let (mut connection_a, mut connection_b) = (None, None);
    let mut client_a = open_session(&mut service, &mut connection_a);
    let _client_b = open_session(&mut service, &mut connection_b);
    let of_a = record(&mut client_a, &request);
    assert_eq!(ask_in(&mut service, &mut connection_b, &of_a).0, refused(ServiceErrorCode::SessionRecordRefused));
    assert!(matches!(ask_in(&mut service, &mut connection_a, &of_a).0, ServiceReply::SessionReply { .. }));

    // A record on a connection that never opened a session.
    let mut nothing = None;
    assert_eq!(ask_in(&mut service, &mut nothing, &of_a).0, refused(ServiceErrorCode::NoSession));
}

#[test]
fn infers_of_several_connections_run_as_one_batch_and_each_reply_goes_to_its_sender() {
    use protocol::session::decode_reply;
    let mut service = service();
    let key = service_key(&mut service);
    // Four connections: two sealed requests (the model refuses the second) and two sessions.
    let mut connections = [None, None, None, None];
    let (sealed, reply_key) = infer_request(&key, &[1.0, 2.0, 3.0]);
    let (refused, _) = infer_request(&key, &[1.0]);
    let mut client_a = open_session(&mut service, &mut connections[2]);
    let mut client_b = open_session(&mut service, &mut connections[3]);
    let requests = [
        sealed.clone(),
        refused,
        record(&mut client_a, &SessionRequest::Infer(vec![4.0, 4.0, 4.0])),
        record(&mut client_b, &SessionRequest::Infer(vec![0.5, 0.5, 0.5])),
    ];
    let mut pending: Vec<PendingInfer> = requests
        .iter()
        .zip(&mut connections)
        .map(|(request, connection)| match service.begin(&request.encode().unwrap(), connection, &mut rng()) {
            Begun::Infer(pending) => pending,
            Begun::Answered(..) => panic!("an infer was answered before its batch ran"),
        })
        .collect();
    service.run_batch(&mut pending.iter_mut().collect::<Vec<_>>());
    assert_eq!(service.model().unwrap().batch_sizes, [4], "one pass through the model");
    let replies: Vec<(ServiceReply, Outcome)> = pending
        .into_iter()
        .zip(&mut connections)
        .map(|(pending, connection)| {
            let (body, outcome) = service.finish(pending, connection, &mut rng());
            (ServiceReply::decode(&body).unwrap(), outcome)
        })
        .collect();
    let ServiceRequest::Infer { encapped_key: aad, .. } = &sealed else { unreachable!() };
    let ServiceReply::Result { encapped_key, sealed_output } = &replies[0].0 else { panic!("{:?}", replies[0]) };
    let opened = reply_key.open(encapped_key, sealed_output, RESULT_INFO, aad).unwrap();
    assert_eq!(decode_values(&opened).unwrap(), vec![2.0, 4.0, 6.0]);
    let wrong_count = ServiceErrorCode::WrongValueCount;
    assert_eq!(
        replies[1],
        (ServiceReply::Error { code: wrong_count }, Outcome { request: "infer", error: Some(wrong_count) })
    );
    for (reply, client, expected) in [(&replies[2], &mut client_a, [8.0; 3]), (&replies[3], &mut client_b, [1.0; 3])] {
        let ServiceReply::SessionReply { number, record } = &reply.0 else { panic!("{reply:?}") };
        assert_eq!(decode_reply(&client.open_next(*number, record).unwrap()).unwrap(), Ok(expected.to_vec()));
        assert_eq!(reply.1, Outcome { request: "infer", error: None });
    }
    // `handle` runs an infer as a batch of one.
    let (request, _) = infer_request(&key, &[1.0, 1.0, 1.0]);
    assert!(matches!(ask(&mut service, &request), ServiceReply::Result { .. }));
    assert_eq!(service.model().unwrap().batch_sizes, [4, 1]);
}

#[test]
fn an_infer_whose_session_ended_while_it_waited_is_not_answered_in_it() {
    let mut service = service();
    let mut connection = None;
    let mut client = open_session(&mut service, &mut connection);
    let request = record(&mut client, &SessionRequest::Infer(vec![1.0, 1.0, 1.0]));
    let Begun::Infer(mut pending) = service.begin(&request.encode().unwrap(), &mut connection, &mut rng()) else {
        panic!("answered before its batch ran");
    };
    service.run_batch(&mut [&mut pending]);
    connection = None;
    let (body, outcome) = service.finish(pending, &mut connection, &mut rng());
    assert_eq!(ServiceReply::decode(&body).unwrap(), ServiceReply::Error { code: ServiceErrorCode::NoSession });
    assert_eq!(outcome.error, Some(ServiceErrorCode::NoSession));
}
