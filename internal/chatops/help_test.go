package chatops

import (
	"strings"
	"testing"
)

// TestHelpListsOnlyWhatTheAskerMayRun: /help listed every command and every stage's approvers
// to whoever asked, so a reader was offered /promote prod and --force. Now each person sees
// the commands they may run and the stages they may run them on, decided by the same
// authorization as the commands themselves.
func TestHelpListsOnlyWhatTheAskerMayRun(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		user       string
		has, lacks []string
	}{
		{"guest", []string{"`/status`", "`/help`", "Nothing here deploys on your word"},
			[]string{"`/promote", "`/deploy", "`/rollback", "`/lock", "`/unlock", "--force", "**prod**"}},
		{"dev", []string{"`/deploy <stage> [ref]`: deploy a branch, tag or sha (default: the stage's branch) to the stage. On **dev**, **test**.",
			"`/unlock <stage>`: release a lock. On **dev**, **test**; your own locks, wherever they are."},
			[]string{"`/promote", "**alpha**", "**prod**", "--force", "ships releases only", "A push of yours"}},
		{"lead", []string{"On **dev**, **test**, **alpha**.", "A push of yours to `alpha` deploys it too"}, []string{"**prod**", "--force"}},
		{"po", []string{"On **prod**.", "**prod** ships releases only"}, []string{"**alpha**", "--force", "/lock <stage> [reason]`: hold automatic deploys and commands for the stage. On **prod**"}},
		{"root", []string{"--force \"reason\"", "As an admin you may add"}, []string{"**prod**."}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got := w.say(9, tt.user, "/help")
			for _, s := range tt.has {
				if !strings.Contains(got, s) {
					t.Errorf("/help for @%s lacks %q:\n%s", tt.user, s, got)
				}
			}
			for _, s := range tt.lacks {
				if strings.Contains(got, s) {
					t.Errorf("/help for @%s offers %q, which they may not run:\n%s", tt.user, s, got)
				}
			}
		})
	}
}
