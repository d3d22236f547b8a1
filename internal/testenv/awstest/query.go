package awstest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// serveQuery answers an awsQuery request (STS): form parameters decoded by the input shape and
// validated, an XML answer decoded by the output shape and validated too.
func (e *Env) serveQuery(w http.ResponseWriter, r *http.Request, body []byte) {
	params, err := url.ParseQuery(string(body))
	op := params.Get("Action")
	call := Call{Service: "sts", Operation: op, Body: body, Params: params}
	defer func() { e.record(call) }()
	fail := func(status int, code, msg string) {
		call.Status = status
		queryError(w, status, code, msg)
	}
	m := e.models["sts"]
	in := m.shapeOf(op, "input")
	if err != nil || in == "" || params.Get("Version") != m.Metadata["apiVersion"] {
		e.problem("sts: not an awsQuery request of the model subset: %q", body)
		fail(http.StatusBadRequest, "InvalidAction", "Could not find operation "+op)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		e.problem("sts.%s: Content-Type %q, want application/x-www-form-urlencoded", op, ct)
	}
	key, role, ae := e.authenticate(r, body, "sts")
	call.AccessKeyID, call.Role = key, role
	if ae != nil {
		if ae.unexpected {
			e.problem("sts.%s: %s: %s", op, ae.code, ae.msg)
		}
		fail(ae.status, ae.code, ae.msg)
		return
	}
	used := map[string]bool{"Action": true, "Version": true}
	v := decodeQuery(m, in, "", params, used)
	probs := m.validate(in, v, op)
	for _, k := range sortedKeys(params) {
		if !used[k] {
			probs = append(probs, fmt.Sprintf("%s: unknown parameter %s", op, k))
		}
	}
	if len(probs) > 0 {
		e.problem("sts.%s request: %s", op, strings.Join(probs, "; "))
		fail(http.StatusBadRequest, "ValidationError", strings.Join(probs, "; "))
		return
	}
	if e.throttled("sts") {
		fail(http.StatusBadRequest, "Throttling", "Rate exceeded")
		return
	}
	out, aerr := e.STS.handle(op, params, key)
	if aerr != nil {
		if !m.errorAllowed(op, aerr.code) {
			e.problem("sts.%s answered error %s, which the model does not give it", op, aerr.code)
		}
		status := aerr.status
		if status == 0 {
			status = http.StatusBadRequest
		}
		fail(status, aerr.code, aerr.msg)
		return
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(out); err != nil {
		e.problem("sts.%s: encoding the answer: %v", op, err)
		fail(http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	if probs := checkQueryResponse(m, op, buf.Bytes()); len(probs) > 0 {
		e.problem("sts.%s response: %s", op, strings.Join(probs, "; "))
	}
	call.Status = http.StatusOK
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", requestID())
	_, _ = w.Write(buf.Bytes())
}

// decodeQuery rebuilds a value of a shape from awsQuery parameters: structure members as
// Prefix.Member, lists as Prefix.member.N (Prefix.N when flattened; an empty list as "Prefix="),
// maps as Prefix.entry.N.key/value, scalars as text converted by type (left as text when they do
// not convert, so that validation reports them). It marks the parameters it read.
func decodeQuery(m *model, shapeName, prefix string, params url.Values, used map[string]bool) any {
	shape := m.Shapes[shapeName]
	join := func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "." + b
	}
	present := func(p string) bool {
		for k := range params {
			if k == p || strings.HasPrefix(k, p+".") {
				return true
			}
		}
		return false
	}
	ref := func(k string) string { s, _ := shape[k].(map[string]any)["shape"].(string); return s }
	switch shape["type"] {
	case "structure":
		obj := map[string]any{}
		members, _ := shape["members"].(map[string]any)
		for name, mem := range members {
			p := join(prefix, name)
			if present(p) {
				obj[name] = decodeQuery(m, mem.(map[string]any)["shape"].(string), p, params, used)
			}
		}
		return obj
	case "list":
		if _, ok := params[prefix]; ok {
			used[prefix] = true
			return []any{}
		}
		item := prefix + ".member"
		if shape["flattened"] == true {
			item = prefix
		}
		var out []any
		for i := 1; present(item + "." + strconv.Itoa(i)); i++ {
			out = append(out, decodeQuery(m, ref("member"), item+"."+strconv.Itoa(i), params, used))
		}
		return out
	case "map":
		out := map[string]any{}
		for i := 1; present(prefix + ".entry." + strconv.Itoa(i)); i++ {
			e := prefix + ".entry." + strconv.Itoa(i)
			k, _ := decodeQuery(m, ref("key"), e+".key", params, used).(string)
			out[k] = decodeQuery(m, ref("value"), e+".value", params, used)
		}
		return out
	}
	used[prefix] = true
	return scalar(shape["type"], params.Get(prefix))
}

// scalar converts query or XML text to the value JSON decoding would give for the type.
func scalar(typ any, s string) any {
	switch typ {
	case "integer", "long", "double", "float":
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	case "boolean":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	}
	return s
}

// xmlNode is an element of a decoded XML document.
type xmlNode struct {
	name     xml.Name
	text     string
	children []*xmlNode
}

func parseXML(b []byte) (*xmlNode, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return root, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parsing XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: t.Name}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
}

// checkQueryResponse validates an awsQuery answer: <OpResponse xmlns=...> holding the result
// wrapper (decoded by the output shape) and ResponseMetadata with a RequestId.
func checkQueryResponse(m *model, op string, b []byte) []string {
	root, err := parseXML(b)
	if err != nil || root == nil {
		return []string{fmt.Sprintf("not XML: %v", err)}
	}
	var probs []string
	if root.name.Local != op+"Response" || root.name.Space != m.Metadata["xmlNamespace"] {
		probs = append(probs, fmt.Sprintf("root element {%s}%s, want {%s}%sResponse", root.name.Space, root.name.Local, m.Metadata["xmlNamespace"], op))
	}
	wrapper, _ := m.Operations[op]["output"].(map[string]any)["resultWrapper"].(string)
	var result, meta bool
	for _, c := range root.children {
		switch c.name.Local {
		case wrapper:
			result = true
			out := m.shapeOf(op, "output")
			probs = append(probs, m.validate(out, decodeXML(m, out, c, &probs, op), op)...)
		case "ResponseMetadata":
			meta = len(c.children) == 1 && c.children[0].name.Local == "RequestId" && c.children[0].text != ""
		default:
			probs = append(probs, fmt.Sprintf("unexpected element %s", c.name.Local))
		}
	}
	if !result || !meta {
		probs = append(probs, fmt.Sprintf("want %s and ResponseMetadata/RequestId", wrapper))
	}
	return probs
}

// decodeXML rebuilds a value of a shape from awsQuery XML: structures by member name (or
// locationName), lists of <member> elements, scalars as text converted by type.
func decodeXML(m *model, shapeName string, n *xmlNode, probs *[]string, path string) any {
	shape := m.Shapes[shapeName]
	switch shape["type"] {
	case "structure":
		obj := map[string]any{}
		members, _ := shape["members"].(map[string]any)
		for _, c := range n.children {
			name, ref := c.name.Local, ""
			for mn, mem := range members {
				mm := mem.(map[string]any)
				if mn == c.name.Local || mm["locationName"] == c.name.Local {
					name, ref = mn, mm["shape"].(string)
				}
			}
			if ref == "" {
				*probs = append(*probs, fmt.Sprintf("%s: unknown element %s of %s", path, c.name.Local, shapeName))
				continue
			}
			obj[name] = decodeXML(m, ref, c, probs, path+"."+name)
		}
		return obj
	case "list":
		out := []any{}
		member := shape["member"].(map[string]any)
		for i, c := range n.children {
			if c.name.Local != "member" && c.name.Local != member["locationName"] {
				*probs = append(*probs, fmt.Sprintf("%s: list item <%s>, want <member>", path, c.name.Local))
				continue
			}
			out = append(out, decodeXML(m, member["shape"].(string), c, probs, fmt.Sprintf("%s[%d]", path, i)))
		}
		return out
	}
	return scalar(shape["type"], n.text)
}

// queryError writes an awsQuery error document, as the SDK's deserializer reads it.
func queryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(msg))
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		code, esc.String(), requestID())
}
