import { Arg, Args, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../context';
import { BadUserInputError } from '../errors';
import { roomOfKey } from '../messages/conversation';
import { Message, type MessageView } from '../messages/message.type';
import type { UserRecord } from '../users/user.type';
import type { RoomDoc } from './room.model';
import { CreateRoomInput, OnlineMembersArgs, RoomsArgs } from './room.input';
import { RoomService } from './room.service';
import { Room, RoomConnection, RoomMemberConnection } from './room.type';

/** What Room fields resolve from: the stored room with `id` for `_id`. */
export interface RoomView extends Omit<RoomDoc, '_id'> {
  id: string;
}

export function toRoomView(doc: RoomDoc): RoomView {
  const { _id, ...rest } = doc;
  return { id: _id, ...rest };
}

const DEFAULT_MEMBERS_PAGE = 50;
const MAX_MEMBERS_PAGE = 100;

@Resolver(() => Room)
export class RoomResolver {
  constructor(private readonly roomService: RoomService) {}

  @Query(() => RoomConnection, { description: 'Public rooms, most recently active first (Relay pagination)' })
  async rooms(@Args() args: RoomsArgs) {
    const page = await this.roomService.list(args.first, args.after);
    const edges = page.rooms.map((r) => ({ cursor: RoomService.cursor(r), node: toRoomView(r) }));
    return {
      edges,
      pageInfo: {
        hasNextPage: page.hasNextPage,
        hasPreviousPage: page.hasPreviousPage,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges[edges.length - 1]?.cursor ?? null,
      },
    };
  }

  @Query(() => Room, { nullable: true, description: 'The room with this slug (a private room’s slug is its invite)' })
  async room(@Arg('slug', () => String) slug: string): Promise<RoomView | null> {
    const room = await this.roomService.bySlug(slug);
    return room ? toRoomView(room) : null;
  }

  @Query(() => [Room], { description: 'The rooms the viewer is a member of, most recently joined first' })
  async myRooms(@Ctx() ctx: Context): Promise<RoomView[]> {
    return (await this.roomService.mine(ctx.user.id)).map(toRoomView);
  }

  @Mutation(() => Room, { description: 'Creates a room; the creator joins it' })
  async createRoom(
    @Arg('input', () => CreateRoomInput) input: CreateRoomInput,
    @Ctx() ctx: Context,
  ): Promise<RoomView> {
    return toRoomView(await this.roomService.create(ctx.user.id, input));
  }

  @Mutation(() => Room, { description: 'Joins a room by its slug (the slug is the invite); joining again is a no-op' })
  async joinRoom(@Arg('slug', () => String) slug: string, @Ctx() ctx: Context): Promise<RoomView> {
    return toRoomView(await this.roomService.joinBySlug(ctx.user.id, slug));
  }

  @Mutation(() => Boolean, { description: 'Leaves a room; false when the viewer was not a member' })
  leaveRoom(@Arg('room', () => ID) room: string, @Ctx() ctx: Context): Promise<boolean> {
    return this.roomService.leave(ctx.user.id, room);
  }

  @FieldResolver(() => Int)
  memberCount(@Root() room: RoomView): Promise<number> {
    return this.roomService.memberCount(room.id);
  }

  @FieldResolver(() => Boolean)
  joined(@Root() room: RoomView, @Ctx() ctx: Context): Promise<boolean> {
    return this.roomService.isMember(room.id, ctx.user.id);
  }

  @FieldResolver(() => Int)
  async online(@Root() room: RoomView): Promise<number> {
    return (await this.roomService.onlineMembers(room.id)).length;
  }

  @FieldResolver(() => RoomMemberConnection)
  async onlineMembers(@Root() room: RoomView, @Args() args: OnlineMembersArgs, @Ctx() ctx: Context) {
    const n = args.first ?? DEFAULT_MEMBERS_PAGE;
    if (!Number.isInteger(n) || n < 0 || n > MAX_MEMBERS_PAGE) {
      throw new BadUserInputError(`first must be an integer in 0..${MAX_MEMBERS_PAGE}`, 'first');
    }
    let ids = await this.roomService.onlineMembers(room.id);
    const after = args.after != null ? decodeMemberCursor(args.after) : null;
    if (after !== null) ids = ids.filter((id) => id > after);
    const pageIds = ids.slice(0, n);
    const users = await ctx.loaders.users.loadMany(pageIds);
    const edges = users
      .filter((u): u is UserRecord => u !== null && !(u instanceof Error))
      .map((u) => ({ cursor: Buffer.from(u.id).toString('base64url'), node: u }));
    return {
      edges,
      pageInfo: {
        hasNextPage: ids.length > n,
        hasPreviousPage: after !== null,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges[edges.length - 1]?.cursor ?? null,
      },
    };
  }
}

function decodeMemberCursor(cursor: string): string {
  const id = typeof cursor === 'string' && cursor.length <= 64 ? Buffer.from(cursor, 'base64url').toString() : '';
  if (!/^[A-Za-z0-9_-]{1,48}$/.test(id)) throw new BadUserInputError('after is not a valid cursor', 'after');
  return id;
}

/** `Message.room`: the room of a room message, null elsewhere. */
@Resolver(() => Message)
export class MessageRoomResolver {
  constructor(private readonly roomService: Pick<RoomService, 'get'>) {}

  @FieldResolver(() => Room, { nullable: true, description: 'The room of a room message; null outside rooms' })
  async room(@Root() m: MessageView): Promise<RoomView | null> {
    const roomId = roomOfKey(m.conversation);
    const room = roomId ? await this.roomService.get(roomId) : null;
    return room ? toRoomView(room) : null;
  }
}
