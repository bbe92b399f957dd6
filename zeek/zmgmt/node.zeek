##! zmgmt's management endpoint for a Zeek cluster node.
##!
##! The agent that runs this node loads this script into it. Zeek cannot dial a
##! WebSocket, but it can serve one, so the node listens on a loopback-only port the
##! agent chose (ZMGMT_NODE_MANAGEMENT_PORT) and the agent dials it. Once the agent's
##! link is up the node checks in with notify_node_hello (-> RUNNING), and it answers
##! node_dispatch_request the way upstream's Management::Node does (same event names,
##! same result record layout, same error texts). Requests and answers use topics
##! private to this node, so they never reach the rest of the cluster.
##!
##! It also sets up log rotation on loggers as upstream's supervised clusters do:
##! rotated files go to ./log-queue under archiver-style names, where the agent picks
##! them up and archives them.

@load base/frameworks/cluster

module ZMgmt::Node;

export {
	## Environment variable carrying the loopback port of the management endpoint.
	const port_env = "ZMGMT_NODE_MANAGEMENT_PORT" &redef;

	## Written into the working directory once the endpoint listens, so that the agent
	## dials at that moment; see MANAGEMENT_LISTENING_FILE in zmgmt.
	const listening_file = ".zmgmt-listening" &redef;

	## Topic prefix shared with the agent; see nodeRequestTopic() in zmgmt.
	const topic_prefix = "zeek/management/node" &redef;

	## Same field order as upstream's Management::Result, so both encode alike on the wire.
	type Result: record {
		reqid: string;
		success: bool &default=T;
		instance: string &optional;
		data: any &optional;
		error: string &optional;
		node: string &optional;
	};
}

module Management::Node::API;

export {
	global node_dispatch_request: event(reqid: string, action: vector of string,
	    nodes: set[string] &default=set());
	global node_dispatch_response: event(reqid: string, result: ZMgmt::Node::Result);
	## Upstream carries only the name; the pid lets the agent tell this process's
	## check-in from a late one of a process it already replaced.
	global notify_node_hello: event(node: string, pid: int);
}

module ZMgmt::Node;

function request_topic(): string
	{
	return fmt("%s/%s/request", topic_prefix, Cluster::node);
	}

function response_topic(): string
	{
	return fmt("%s/%s/response", topic_prefix, Cluster::node);
	}

function dispatch_get_id_value(args: vector of string, res: Result)
	{
	if ( |args| == 0 )
		{
		res$success = F;
		res$error = "get_id_value expects name of global identifier";
		return;
		}

	local val = lookup_ID(args[0]);

	# lookup_ID() reports a missing identifier or value as one of these strings;
	# upstream passes them on without the angle brackets.
	if ( type_name(val) == "string" )
		{
		local valstr: string = val;
		if ( valstr == "<unknown id>" || valstr == "<no ID value>" )
			{
			res$success = F;
			res$error = valstr[1:-1];
			return;
			}
		}

	res$data = to_json(val);
	}

event Management::Node::API::node_dispatch_request(reqid: string, action: vector of string,
    nodes: set[string])
	{
	if ( |nodes| > 0 && Cluster::node !in nodes )
		return;

	local res = Result($reqid=reqid, $node=Cluster::node);

	if ( |action| == 0 )
		{
		res$success = F;
		res$error = "no dispatch arguments provided";
		}
	else if ( action[0] == "get_id_value" )
		dispatch_get_id_value(action[1:], res);
	else
		{
		res$success = F;
		res$error = fmt("dispatch %s unknown", action[0]);
		}

	Cluster::publish(response_topic(), Management::Node::API::node_dispatch_response, reqid, res);
	}

event Cluster::websocket_client_added(endpoint: Cluster::EndpointInfo, subscriptions: string_vec)
	{
	# Only the agent subscribes to this node's response topic.
	for ( _, topic in subscriptions )
		{
		if ( topic == response_topic() )
			{
			Cluster::publish(response_topic(), Management::Node::API::notify_node_hello,
			    Cluster::node, to_int(cat(getpid())));
			return;
			}
		}
	}

event zeek_init() &priority=50
	{
	if ( Cluster::node == "" )
		return;

	local spec = getenv(port_env);
	if ( spec == "" )
		Reporter::fatal(fmt("%s is not set: this node was not started by a zmgmt agent", port_env));

	local p = to_port(fmt("%s/tcp", spec));
	if ( ! Cluster::listen_websocket(Cluster::WebSocketServerOptions($listen_addr=127.0.0.1, $listen_port=p)) )
		Reporter::fatal(fmt("cannot listen for the agent on 127.0.0.1:%s", p));

	Cluster::subscribe(request_topic());

	local f = open(listening_file);
	print f, getpid();
	close(f);
	}

@if ( Cluster::is_enabled() && Cluster::node in Cluster::nodes &&
      ( Cluster::local_node_type() == Cluster::LOGGER ||
        ( Cluster::local_node_type() == Cluster::MANAGER && Cluster::manager_is_logger ) ) )
# As for upstream's supervised loggers: rotate into ./log-queue under names that carry the
# open and close times, and leave archival to the agent instead of a postprocessor.
redef Log::default_rotation_dir = "log-queue";
redef Log::rotation_format_func = archiver_rotation_format_func;
redef LogAscii::enable_leftover_log_rotation = T;
redef Log::default_rotation_postprocessor_cmd = "";
@endif
