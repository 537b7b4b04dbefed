import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Message, PageInfo } from '../messages/message.type';
import { REPORT_REASONS, type ReportReasonValue } from './report.service';

export const ReportReason = Object.fromEntries(REPORT_REASONS.map((r) => [r, r])) as {
  [K in ReportReasonValue]: K;
};
registerEnumType(ReportReason, {
  name: 'ReportReason',
  description: 'Why a message is reported (fixed reasons: free text would invite abuse of the report itself)',
});

@ObjectType({ description: 'A reported message in the moderators’ queue, with every report of it aggregated' })
export class Report {
  @Field(() => ID, { description: 'The reported message’s id' })
  id!: string;

  @Field(() => Message, { description: 'As stored, also when hidden from others' })
  message!: Message;

  @Field(() => [ReportReason])
  reasons!: ReportReasonValue[];

  @Field(() => Int, { description: 'Distinct users who reported it' })
  reporters!: number;

  @Field(() => Date, { description: 'The first report' })
  createdAt!: Date;
}

@ObjectType()
export class ReportEdge {
  @Field()
  cursor!: string;

  @Field(() => Report)
  node!: Report;
}

@ObjectType()
export class ReportConnection {
  @Field(() => [ReportEdge])
  edges!: ReportEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType({ description: 'One moderator action, from the audit log' })
export class ModerationAction {
  @Field(() => ID)
  id!: string;

  @Field({ description: 'The label of the moderator token used' })
  by!: string;

  @Field({ description: 'ban, shadowBan, unban, clearReport, deleteMessage, setSlowMode' })
  action!: string;

  @Field({ description: 'The user or message acted on' })
  target!: string;

  @Field(() => String, { nullable: true, description: 'JSON with the action’s parameters' })
  details!: string | null;

  @Field(() => Date)
  at!: Date;
}

@ObjectType()
export class ModerationActionEdge {
  @Field()
  cursor!: string;

  @Field(() => ModerationAction)
  node!: ModerationAction;
}

@ObjectType()
export class ModerationActionConnection {
  @Field(() => [ModerationActionEdge])
  edges!: ModerationActionEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
