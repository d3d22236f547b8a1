package jobs

import (
	"encoding/json"
	"fmt"

	"github.com/stagecoach/stagecoach/internal/deploy"
)

// ForDeploy is the one place that says which jobs a change of a deploy implies. The store calls it
// in the transaction that makes the change, so a change is never recorded without its jobs, nor
// jobs without their change. d is the deploy as the change leaves it, with the report sequence
// the change gave it:
//
//   - every change worth reporting gets a KindDeployReport job, in the environment's lane, so a
//     deploy's reports are written by one replica at a time and in order, after its check run;
//   - a deploy that ended also gets one KindDeployEnded job (the release workflow closes or
//     updates a release issue with it). Deploys asked for on the same issue end in the issue's
//     lane, so a promotion of several apps is judged once all of them ended, by one job at a time.
func ForDeploy(d deploy.Deploy) []Job {
	out := []Job{{Kind: KindDeployReport, Key: fmt.Sprintf("deploy.report/%d/%d", d.ID, d.ReportSeq), Lane: ReportLane(d),
		Payload: mustJSON(DeployReport{DeployID: d.ID, Seq: d.ReportSeq})}}
	if d.State.Final() {
		e := DeployEnded{DeployID: d.ID, State: string(d.State), App: d.App, Stage: d.Stage, Repo: d.Repo,
			InstallationID: d.InstallationID, Issue: d.Trigger.Issue, Command: d.Trigger.Command(), Delivery: d.Trigger.Delivery}
		j := Job{Kind: KindDeployEnded, Key: fmt.Sprintf("deploy.ended/%d", d.ID), Payload: mustJSON(e)}
		if e.Issue != 0 {
			j.Lane = fmt.Sprintf("issue:%s#%d", d.Repo, e.Issue)
		}
		out = append(out, j)
	}
	return out
}

// CheckRun is the job that gives a new deploy its check run: the first job in its lane.
func CheckRun(d deploy.Deploy) Job {
	return Job{Kind: KindCheckRunCreate, Key: fmt.Sprintf("checkrun.create/%d", d.ID), Lane: ReportLane(d),
		Payload: mustJSON(CheckRunCreate{DeployID: d.ID})}
}

// ReportLane is the lane of a deploy's reports: its GitHub environment (repository and stage),
// so that a report about an older deploy never reaches GitHub after one about a newer deploy of
// the same environment.
func ReportLane(d deploy.Deploy) string {
	return "report:" + d.Repo + ":" + d.Stage
}

// mustJSON marshals a payload of plain fields, which cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("jobs: marshal %T: %v", v, err))
	}
	return b
}
